/** OCI content descriptors and manifests as the registry client hands them out. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
  urls?: string[];
  platform?: { architecture: string; os: string; variant?: string; 'os.version'?: string; 'os.features'?: string[] };
}

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociDescriptor: 'application/vnd.oci.descriptor.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
];

/** A manifest fetched from a registry: the exact bytes, their digest and the media type served. */
export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}
