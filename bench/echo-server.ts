/**
 * The baseline: a bare Express app that parses a JSON body and echoes it, with nothing else.
 * Intake is measured against it in the same run, so the ratio is what the gateway's work costs.
 */
import express from 'express';

const app = express();
app.use(express.json({ type: () => true, limit: '5mb' }));
app.post('/fhir/ServiceRequest', (req, res) => {
  res.status(201).type('application/fhir+json').send(JSON.stringify(req.body));
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ message: 'echo listening', port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
