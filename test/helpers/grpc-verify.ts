/**
 * Drive signetd's gRPC API directly (as many signet-verifier processes would, without spawning one per
 * call): VerifyImage over one or more channels on the unix socket, each call with a deadline.
 */
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../../src/daemon/grpc-server.js';

export interface VerifyAnswer {
  /** The gRPC status: 0 when signetd answered with a Judgement. */
  status: number;
  details: string;
  ok: boolean;
  reason: string;
  code: string;
  decision: string;
}

type Unary = (req: unknown, meta: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void;

export interface VerifyClient {
  verify(name: string, descriptor: { mediaType: string; digest: string; size: number }, deadlineMs?: number): Promise<VerifyAnswer>;
  close(): void;
}

/**
 * `channels` separate HTTP/2 connections (each verifier process has its own), calls spread round-robin.
 */
export function verifyClient(socket: string, channels = 1): VerifyClient {
  const Ctor = verifierServiceClient(loadProtos());
  const clients = Array.from(
    { length: channels },
    () =>
      new Ctor(`unix://${socket}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client &
        Record<string, Unary>,
  );
  let next = 0;
  return {
    verify(name, descriptor, deadlineMs = 8000) {
      const c = clients[next++ % clients.length]!;
      return new Promise((resolve) => {
        c['VerifyImage']!({ name, descriptor }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
          if (err) resolve({ status: err.code, details: err.details, ok: false, reason: '', code: '', decision: '' });
          else
            resolve({
              status: 0,
              details: '',
              ok: res['ok'] === true,
              reason: String(res['reason'] ?? ''),
              code: String(res['code'] ?? ''),
              decision: String(res['decision'] ?? ''),
            });
        });
      });
    },
    close() {
      for (const c of clients) c.close();
    },
  };
}

/** Run `total` tasks with at most `concurrency` at a time; results in task order. */
export async function pool<T>(total: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(total);
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < total) {
      const mine = i++;
      out[mine] = await task(mine);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return out;
}
