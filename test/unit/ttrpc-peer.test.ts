/**
 * One ttrpc endpoint (src/nri/peer.ts) against hand-made messages: calls and responses matched by
 * stream ID, and every kind of bad input answered with the status ttrpc-go's server gives (or
 * dropped), never an exception.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TtrpcPeer, type Handler } from '../../src/nri/peer.js';
import {
  Code,
  decodeResponse,
  encodeHeader,
  encodeRequest,
  encodeResponse,
  Flags,
  MessageType,
  TTRPC_MAX_DATA,
  TtrpcError,
  TtrpcReader,
} from '../../src/nri/ttrpc.js';

/** A peer whose output is collected and parsed. */
function harness(handlers: Record<string, Handler> = {}) {
  const out = new TtrpcReader();
  const sent: Array<{ streamId: number; type: number; flags: number; data: Buffer }> = [];
  const issues: string[] = [];
  const peer = new TtrpcPeer(
    (parts) => {
      for (const m of out.push(Buffer.concat(parts))) sent.push(m as (typeof sent)[number]);
    },
    new Map(Object.entries(handlers)),
    (what) => issues.push(what),
  );
  const request = (streamId: number, service: string, method: string, payload = Buffer.alloc(0), flags = 0) => {
    const body = encodeRequest({ service, method, payload });
    peer.receive(Buffer.concat([encodeHeader(body.length, streamId, MessageType.Request, flags), body]));
  };
  const responses = () => sent.filter((m) => m.type === MessageType.Response).map((m) => ({ streamId: m.streamId, ...decodeResponse(m.data) }));
  return { peer, sent, issues, request, responses };
}

const tick = () => new Promise((r) => setImmediate(r));
const echo: Handler = (p) => Buffer.concat([Buffer.from('echo:'), p]);

describe('ttrpc peer', () => {
  it('serves a request with its handler and answers on the same stream', async () => {
    const h = harness({ 'svc/Echo': echo });
    h.request(1, 'svc', 'Echo', Buffer.from('hi'));
    await tick();
    assert.deepEqual(h.responses(), [{ streamId: 1, status: { code: 0, message: '' }, payload: Buffer.from('echo:hi') }]);
    assert.equal(h.sent[0]!.flags, 0);
  });

  it("answers a handler's TtrpcError with its status, and any other failure with INTERNAL", async () => {
    const h = harness({
      'svc/No': () => {
        throw new TtrpcError(Code.PERMISSION_DENIED, 'signet: rejected x');
      },
      'svc/Bug': async () => {
        throw new Error('oops');
      },
    });
    h.request(1, 'svc', 'No');
    h.request(3, 'svc', 'Bug');
    await tick();
    assert.deepEqual(
      h.responses().map((r) => [r.streamId, r.status.code, r.status.message]),
      [
        [1, Code.PERMISSION_DENIED, 'signet: rejected x'],
        [3, Code.INTERNAL, 'oops'],
      ],
    );
  });

  it('answers an unknown method or service with UNIMPLEMENTED and keeps serving', async () => {
    const h = harness({ 'svc/Echo': echo });
    h.request(1, 'svc', 'Nope');
    h.request(3, 'other.Service', 'Echo');
    h.request(5, 'svc', 'Echo', Buffer.from('still'));
    await tick();
    const r = h.responses();
    assert.deepEqual(
      r.map((x) => x.status.code),
      [Code.UNIMPLEMENTED, Code.UNIMPLEMENTED, Code.OK],
    );
    assert.match(r[0]!.status.message, /method Nope of service svc not implemented/);
    assert.match(r[1]!.status.message, /service other.Service not implemented/);
    assert.equal(h.peer.stats.rejectedRequests, 2);
  });

  it('refuses even stream IDs, re-used stream IDs, streaming requests and undecodable requests', async () => {
    const h = harness({ 'svc/Echo': echo });
    h.request(2, 'svc', 'Echo');
    h.request(7, 'svc', 'Echo');
    h.request(5, 'svc', 'Echo');
    h.request(9, 'svc', 'Echo', Buffer.alloc(0), Flags.RemoteOpen);
    const garbage = Buffer.from([0x0a, 0x7f, 0x41]); // field 1, length 127, one byte: truncated
    h.peer.receive(Buffer.concat([encodeHeader(garbage.length, 11, MessageType.Request, 0), garbage]));
    h.request(13, 'svc', 'Echo', Buffer.from('ok'));
    await tick();
    const r = h.responses();
    assert.equal(r.length, 6);
    const byStream = new Map(r.map((x) => [x.streamId, x.status]));
    assert.equal(byStream.get(2)!.code, Code.INVALID_ARGUMENT);
    assert.match(byStream.get(2)!.message, /odd/);
    assert.equal(byStream.get(5)!.code, Code.INVALID_ARGUMENT);
    assert.match(byStream.get(5)!.message, /re-used/);
    assert.equal(byStream.get(7)!.code, Code.OK);
    assert.equal(byStream.get(9)!.code, Code.UNIMPLEMENTED);
    assert.equal(byStream.get(11)!.code, Code.INVALID_ARGUMENT);
    assert.match(byStream.get(11)!.message, /unmarshal request error/);
    assert.equal(byStream.get(13)!.code, Code.OK);
  });

  it('answers an oversized request with RESOURCE_EXHAUSTED on its stream, then serves the next one', async () => {
    const h = harness({ 'svc/Echo': echo });
    h.peer.receive(encodeHeader(TTRPC_MAX_DATA + 100, 1, MessageType.Request, 0));
    h.peer.receive(Buffer.alloc(TTRPC_MAX_DATA + 100));
    h.request(3, 'svc', 'Echo', Buffer.from('next'));
    await tick();
    const r = h.responses();
    assert.deepEqual(
      r.map((x) => [x.streamId, x.status.code]),
      [
        [1, Code.RESOURCE_EXHAUSTED],
        [3, Code.OK],
      ],
    );
  });

  it('drops responses nobody waits for, stream data and unknown message types', async () => {
    const h = harness({ 'svc/Echo': echo });
    const res = encodeResponse({ payload: Buffer.from('stray') });
    h.peer.receive(Buffer.concat([encodeHeader(res.length, 41, MessageType.Response, 0), res]));
    h.peer.receive(Buffer.concat([encodeHeader(3, 1, MessageType.Data, Flags.RemoteClosed), Buffer.from('abc')]));
    h.peer.receive(Buffer.concat([encodeHeader(1, 1, 0x7f, 0), Buffer.from('z')]));
    h.request(1, 'svc', 'Echo', Buffer.from('fine'));
    await tick();
    assert.equal(h.peer.stats.dropped, 3);
    assert.deepEqual(
      h.responses().map((x) => x.payload.toString()),
      ['echo:fine'],
    );
  });

  it('calls the other side with odd, increasing stream IDs and the deadline in timeout_nano', async () => {
    const h = harness();
    const a = h.peer.call('svc', 'A', Buffer.from('1'), 1000);
    const b = h.peer.call('svc', 'B', Buffer.from('2'), 1000);
    const reqs = h.sent.filter((m) => m.type === MessageType.Request);
    assert.deepEqual(
      reqs.map((m) => m.streamId),
      [1, 3],
    );
    // Answer out of order: B (error), then A.
    const err = encodeResponse({ status: { code: Code.NOT_FOUND, message: 'nope' } });
    h.peer.receive(Buffer.concat([encodeHeader(err.length, 3, MessageType.Response, 0), err]));
    const ok = encodeResponse({ payload: Buffer.from('done') });
    h.peer.receive(Buffer.concat([encodeHeader(ok.length, 1, MessageType.Response, 0), ok]));
    assert.equal((await a).toString(), 'done');
    await assert.rejects(b, (e: TtrpcError) => e.code === Code.NOT_FOUND && e.message === 'nope');
  });

  it('fails a call after its timeout, and every waiting call when closed; a closed peer sends nothing', async () => {
    const h = harness({ 'svc/Echo': echo });
    await assert.rejects(h.peer.call('svc', 'Slow', Buffer.alloc(0), 20), (e: TtrpcError) => e.code === Code.DEADLINE_EXCEEDED);
    const waiting = h.peer.call('svc', 'Never', Buffer.alloc(0), 10_000);
    h.peer.close(new Error('connection closed'));
    await assert.rejects(waiting, /connection closed/);
    const before = h.sent.length;
    h.request(1, 'svc', 'Echo');
    await tick();
    assert.equal(h.sent.length, before);
  });

  it('never throws, whatever bytes arrive', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 30 }), async (chunks) => {
        const h = harness({ 'svc/Echo': echo });
        for (const c of chunks) h.peer.receive(Buffer.from(c));
        await tick();
      }),
      { numRuns: 300 },
    );
  });
});
