// A second reference, for diagnosis (`npm run bench -- --fastify`): the framework alone. Fastify
// with the webhook's server options (HTTP/2 with HTTP/1.1 fallback, same certificate, the default
// JSON body parser) answering the constant AdmissionReview, with no logging, metrics or policy.
// The webhook's distance from this is its own code; this one's distance from bare is Fastify's.
//
// usage: node bench/fastify-server.js --cert FILE --key FILE --response FILE --port N
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import fastify from 'fastify';

const { values } = parseArgs({
  options: { cert: { type: 'string' }, key: { type: 'string' }, response: { type: 'string' }, port: { type: 'string' } },
});
if (!values.cert || !values.key || !values.response || !values.port) {
  process.stderr.write('usage: node bench/fastify-server.js --cert FILE --key FILE --response FILE --port N\n');
  process.exit(2);
}

const answer = readFileSync(values.response, 'utf8');
const app = fastify({
  http2: true,
  https: { allowHTTP1: true, cert: readFileSync(values.cert), key: readFileSync(values.key), minVersion: 'TLSv1.2', ALPNProtocols: ['h2', 'http/1.1'] },
  logger: false,
  bodyLimit: 7 * 1024 * 1024,
});
app.post('/mutate', (request, reply) => {
  if (typeof request.body !== 'object' || request.body === null) return reply.code(400).send('body is not a JSON object\n');
  return reply.code(200).type('application/json; charset=utf-8').send(answer);
});
await app.listen({ port: Number(values.port), host: '127.0.0.1' });
process.stdout.write(`fastify server listening on https://127.0.0.1:${values.port}\n`);

const stop = () => {
  void app.close();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
