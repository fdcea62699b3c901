/** The folder of the .proto files (shipped in the package next to dist/). */
import { fileURLToPath } from 'node:url';

export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
