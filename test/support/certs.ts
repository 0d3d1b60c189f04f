// Certificates for mutual-TLS tests, made with openssl in a temporary directory: a CA, a server
// certificate for policy-server.test (and 127.0.0.1), a client certificate, and a client
// certificate from another CA (which the server must refuse).
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mustRun } from './kernel.js';

export interface TestCertificates {
  readonly directory: string;
  readonly caFile: string;
  readonly serverCert: Buffer;
  readonly serverKey: Buffer;
  readonly ca: Buffer;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly rogueCertFile: string;
  readonly rogueKeyFile: string;
}

export const SERVER_NAME = 'policy-server.test';

async function openssl(...args: string[]): Promise<void> {
  await mustRun(['openssl', ...args]);
}

async function issue(directory: string, name: string, caName: string, subject: string, extensions: string): Promise<void> {
  const at = (file: string) => join(directory, file);
  await openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    at(`${name}.key`),
    '-out',
    at(`${name}.csr`),
    '-subj',
    subject,
  );
  await writeFile(at(`${name}.ext`), extensions);
  await openssl(
    'x509',
    '-req',
    '-in',
    at(`${name}.csr`),
    '-CA',
    at(`${caName}.crt`),
    '-CAkey',
    at(`${caName}.key`),
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    at(`${name}.crt`),
    '-extfile',
    at(`${name}.ext`),
  );
}

async function authority(directory: string, name: string): Promise<void> {
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(directory, `${name}.key`),
    '-out',
    join(directory, `${name}.crt`),
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
}

export async function makeCertificates(): Promise<TestCertificates> {
  const directory = await mkdtemp(join(tmpdir(), 'asgc-certs-'));
  await authority(directory, 'ca');
  await authority(directory, 'rogue-ca');
  await issue(
    directory,
    'server',
    'ca',
    `/CN=${SERVER_NAME}`,
    `subjectAltName=DNS:${SERVER_NAME},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`,
  );
  await issue(directory, 'client', 'ca', '/CN=asgc-agent', 'extendedKeyUsage=clientAuth\n');
  await issue(directory, 'rogue', 'rogue-ca', '/CN=asgc-agent', 'extendedKeyUsage=clientAuth\n');
  const at = (file: string) => join(directory, file);
  return {
    directory,
    caFile: at('ca.crt'),
    ca: await readFile(at('ca.crt')),
    serverCert: await readFile(at('server.crt')),
    serverKey: await readFile(at('server.key')),
    clientCertFile: at('client.crt'),
    clientKeyFile: at('client.key'),
    rogueCertFile: at('rogue.crt'),
    rogueKeyFile: at('rogue.key'),
  };
}
