/** Reading signetd's Prometheus /metrics endpoint (a unix socket, `metrics.listen`) in tests. */
import { request } from 'node:http';

/** The body of GET /metrics on the unix socket `socketPath`; rejects on any status but 200. */
export function metricsText(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample (`name{labels}`, labels in the order prom-client writes them), or undefined. */
export function metricSample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
