/** From a JSON pointer into a parsed YAML document to a line and column, for error messages. */
import { isMap, isScalar, type Document, type LineCounter } from 'yaml';

export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Line/column of the value at `path`, or of its key when `key` is set; falls back to the nearest ancestor. */
export function locate(doc: Document, lines: LineCounter, path: Array<string | number>, key?: string): { line: number; col: number } | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const parent = depth === path.length && key !== undefined ? doc.getIn(path, true) : undefined;
    if (key !== undefined && depth === path.length && isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      const range = (pair?.key as { range?: [number, number] } | undefined)?.range;
      if (range) return lines.linePos(range[0]);
    }
    const node = doc.getIn(
      path.slice(0, depth).map((s) => (/^\d+$/.test(String(s)) ? Number(s) : s)),
      true,
    ) as { range?: [number, number] } | undefined;
    if (node?.range) return lines.linePos(node.range[0]);
    const node2 = doc.getIn(path.slice(0, depth), true) as { range?: [number, number] } | undefined;
    if (node2?.range) return lines.linePos(node2.range[0]);
  }
  return undefined;
}
