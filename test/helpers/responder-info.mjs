// Run inside a lab's router namespace: one signed GET /v1/info to a responder (its answer checked for our
// signature), printed as JSON; exit 1 with the error's words on failure. Bounded by the client's deadlines.
//   node responder-info.mjs HOST PORT SECRET_FILE
import { readFileSync } from 'node:fs';
const [host, portText, secretFile] = process.argv.slice(2);
const { ControlClient } = await import('../../dist/coordinator/client.js');
const client = new ControlClient(host, Number(portText), Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'utf8'), host, 3000);
try {
  process.stdout.write(`${JSON.stringify(await client.info())}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: err.message })}\n`);
  process.exitCode = 1;
} finally {
  client.close();
}
