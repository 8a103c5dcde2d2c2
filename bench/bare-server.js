// The ceiling the webhook is measured against: the same TLS certificate, the same ALPN choice
// (h2 with HTTP/1.1 fallback), the body read and JSON-parsed, and a constant answer of the same
// bytes the webhook sends for this request. Whatever the webhook costs above this is fastify,
// validation, the mutation, logging and metrics.
//
// usage: node bench/bare-server.js --cert FILE --key FILE --response FILE --port N
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    response: { type: 'string' },
    port: { type: 'string' },
  },
});
if (!values.cert || !values.key || !values.response || !values.port) {
  process.stderr.write('usage: node bench/bare-server.js --cert FILE --key FILE --response FILE --port N\n');
  process.exit(2);
}

const answer = readFileSync(values.response);
const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(answer.length) };

const server = createSecureServer(
  { cert: readFileSync(values.cert), key: readFileSync(values.key), allowHTTP1: true, minVersion: 'TLSv1.2' },
  (req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      try {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('body is not JSON\n');
        return;
      }
      res.writeHead(200, headers);
      res.end(answer);
    });
  },
);

server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`bare server listening on https://127.0.0.1:${values.port}\n`);
});

const stop = () => {
  server.close();
  // Keep-alive sessions would hold the process open; the benchmark is done with them.
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
