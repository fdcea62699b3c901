/**
 * signet describes the parts of other projects' gRPC APIs it uses (containerd, CRI) in its own .proto
 * files under proto/. compareProtos() checks such a description against the upstream files: every
 * message, field and method of ours must exist upstream under the same full name, with the same field
 * numbers, types, labels and map types, and the same method shapes. Fewer fields than upstream is fine
 * (protobuf skips what a reader does not know); a different number or type is not.
 */
import protobuf from 'protobufjs';

/** Every message and service under `ns`, nested ones included. */
export function allTypes(ns: protobuf.NamespaceBase, out: protobuf.ReflectionObject[] = []): protobuf.ReflectionObject[] {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type || nested instanceof protobuf.Service) out.push(nested);
    if (nested instanceof protobuf.Namespace) allTypes(nested, out);
  }
  return out;
}

/**
 * Load .proto files into a fresh root with `resolve` deciding where each import is read from
 * (return the target unchanged to let protobufjs use its bundled google/protobuf files).
 */
export function loadRoot(files: string[], resolve: (target: string) => string): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => resolve(target);
  return root.loadSync(files, { keepCase: true });
}

/**
 * Every difference between our description and upstream, one line each, and the list of what was
 * checked (`pkg.Message.field`, `pkg.Service/Method`). Types whose full name starts with one of
 * `skipPrefixes` (default: google.) are not compared.
 */
export function compareProtos(ours: protobuf.Root, upstream: protobuf.Root, skipPrefixes: string[] = ['google.']): { problems: string[]; checked: string[] } {
  const problems: string[] = [];
  const checked: string[] = [];
  const same = (what: string, a: unknown, b: unknown): void => {
    if (a !== b) problems.push(`${what}: ours ${String(a)}, upstream ${String(b)}`);
  };
  for (const obj of allTypes(ours)) {
    const name = obj.fullName.slice(1);
    if (skipPrefixes.some((p) => name.startsWith(p))) continue;
    const theirs = upstream.lookup(name);
    if (obj instanceof protobuf.Type) {
      if (!(theirs instanceof protobuf.Type)) {
        problems.push(`${name} is not a message upstream`);
        continue;
      }
      for (const field of obj.fieldsArray) {
        const t: protobuf.Field | undefined = theirs.fields[field.name];
        if (!t) {
          problems.push(`${name}.${field.name} is not a field upstream`);
          continue;
        }
        same(`${name}.${field.name}: field number`, field.id, t.id);
        same(`${name}.${field.name}: type`, field.resolvedType?.fullName ?? field.type, t.resolvedType?.fullName ?? t.type);
        same(`${name}.${field.name}: repeated`, field.repeated, t.repeated);
        same(`${name}.${field.name}: map`, field.map, t.map);
        if (field instanceof protobuf.MapField && t instanceof protobuf.MapField) same(`${name}.${field.name}: map key`, field.keyType, t.keyType);
        checked.push(`${name}.${field.name}`);
      }
    } else if (obj instanceof protobuf.Service) {
      if (!(theirs instanceof protobuf.Service)) {
        problems.push(`${name} is not a service upstream`);
        continue;
      }
      for (const method of obj.methodsArray) {
        const t: protobuf.Method | undefined = theirs.methods[method.name];
        if (!t) {
          problems.push(`${name}/${method.name} is not a method upstream`);
          continue;
        }
        method.resolve();
        t.resolve();
        same(`${name}/${method.name}: request type`, method.resolvedRequestType!.fullName, t.resolvedRequestType!.fullName);
        same(`${name}/${method.name}: response type`, method.resolvedResponseType!.fullName, t.resolvedResponseType!.fullName);
        same(`${name}/${method.name}: response stream`, Boolean(method.responseStream), Boolean(t.responseStream));
        same(`${name}/${method.name}: request stream`, Boolean(method.requestStream), Boolean(t.requestStream));
        checked.push(`${name}/${method.name}`);
      }
    }
  }
  return { problems, checked };
}
