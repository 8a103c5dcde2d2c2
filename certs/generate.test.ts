import crypto, { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CertificateOptionError, generateCertificates, ipToBytes, type GeneratedCertificates } from './generate.js';

const SERVICE = 'dfs-injector';
const NAMESPACE = 'dfs-system';

let certs: GeneratedCertificates;
let ca: X509Certificate;
let leaf: X509Certificate;
let generateKeyPairCalls: unknown[][];

beforeAll(async () => {
  const spy = vi.spyOn(crypto, 'generateKeyPair');
  certs = await generateCertificates({
    service: SERVICE,
    namespace: NAMESPACE,
    dns: ['webhook.example.test'],
    ips: ['127.0.0.1', '::1', 'fd00::10'],
    days: 30,
  });
  generateKeyPairCalls = spy.mock.calls;
  spy.mockRestore();
  ca = new X509Certificate(certs.caCert);
  leaf = new X509Certificate(certs.tlsCert);
});

describe('generateCertificates', () => {
  it('generates RSA keys through node:crypto, not forge’s pure-JavaScript fallback', () => {
    expect(generateKeyPairCalls).toHaveLength(2);
    expect(generateKeyPairCalls.every((call) => call[0] === 'rsa')).toBe(true);
  });

  it('makes a CA certificate that is a CA, self-signed and allowed to sign certificates', () => {
    expect(ca.ca).toBe(true);
    expect(ca.checkIssued(ca)).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    // node's `keyUsage` is the *extended* key usage: a CA carries none.
    expect(ca.keyUsage).toBeUndefined();
    expect(ca.checkPrivateKey(createPrivateKey(certs.caKey))).toBe(true);
  });

  it('signs a serving certificate with the CA, for serverAuth only, that is not a CA', () => {
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(leaf.checkPrivateKey(createPrivateKey(certs.tlsKey))).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(certs.caKey))).toBe(false);
  });

  it('names the Service the four ways a client in the cluster can, plus the extra names and addresses', () => {
    const sans = (leaf.subjectAltName ?? '').split(', ');
    expect(sans).toEqual(
      expect.arrayContaining([
        'DNS:dfs-injector',
        'DNS:dfs-injector.dfs-system',
        'DNS:dfs-injector.dfs-system.svc',
        'DNS:dfs-injector.dfs-system.svc.cluster.local',
        'DNS:webhook.example.test',
        'IP Address:127.0.0.1',
      ]),
    );
    expect(leaf.checkIP('::1')).toBe('::1');
    expect(leaf.checkIP('fd00::10')).toBe('fd00::10');
    expect(leaf.checkIP('10.0.0.1')).toBeUndefined();
    expect(leaf.checkHost('dfs-injector.dfs-system.svc')).toBe('dfs-injector.dfs-system.svc');
  });

  it('uses SHA-256 signatures, positive serials and a notBefore in the past', () => {
    for (const cert of [ca, leaf]) {
      expect(cert.toLegacyObject().serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
      expect(new Date(cert.validFrom).getTime()).toBeLessThan(Date.now() - 60_000);
    }
    expect(ca.serialNumber).not.toBe(leaf.serialNumber);
    const validTo = new Date(leaf.validTo).getTime();
    expect(Math.abs(validTo - Date.now() - 30 * 86_400_000)).toBeLessThan(120_000);
    expect(new Date(ca.validTo).getTime()).toBeGreaterThan(validTo);
  });

  it('records key identifiers that chain the serving certificate to the CA', async () => {
    const forge = (await import('node-forge')).default;
    const caSki = forge.pki.certificateFromPem(certs.caCert).getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier: string };
    const aki = forge.pki.certificateFromPem(certs.tlsCert).getExtension('authorityKeyIdentifier') as { value: string };
    expect(caSki.subjectKeyIdentifier).toMatch(/^[0-9a-f]{40}$/);
    expect(forge.util.bytesToHex(aki.value)).toContain(caSki.subjectKeyIdentifier);
    const caExt = forge.pki.certificateFromPem(certs.caCert);
    expect(caExt.getExtension('basicConstraints')).toMatchObject({ cA: true, critical: true });
    expect(caExt.getExtension('keyUsage')).toMatchObject({ keyCertSign: true, cRLSign: true, critical: true, digitalSignature: false });
    const leafExt = forge.pki.certificateFromPem(certs.tlsCert);
    expect(leafExt.getExtension('keyUsage')).toMatchObject({ digitalSignature: true, keyEncipherment: true, keyCertSign: false });
  });

  it('rejects options with a message naming the flag and the rule', async () => {
    const base = { service: SERVICE, namespace: NAMESPACE };
    const cases: [Parameters<typeof generateCertificates>[0], RegExp][] = [
      [{ ...base, service: 'DFS_Injector' }, /^--service "DFS_Injector" must be a DNS-1123 label/],
      [{ ...base, namespace: '' }, /^--namespace "" must be a DNS-1123 label/],
      [{ ...base, namespace: 'a'.repeat(64) }, /^--namespace "a{64}" must be a DNS-1123 label/],
      [{ ...base, dns: ['bad..name'] }, /^--dns "bad..name" must be a DNS name/],
      [{ ...base, ips: ['256.1.1.1'] }, /^--ip "256.1.1.1" must be an IPv4 or IPv6 address/],
      [{ ...base, days: 0 }, /^--days 0 must be a positive whole number/],
      [{ ...base, days: 1.5 }, /^--days 1.5 must be a positive whole number/],
      [{ ...base, days: 400, caDays: 100 }, /^--ca-days \(100\) must be at least --days \(400\)/],
      [{ ...base, keyBits: 1024 }, /^--key-bits 1024 must be one of 2048, 3072, 4096/],
    ];
    for (const [options, message] of cases) {
      await expect(generateCertificates(options)).rejects.toThrow(message);
      await expect(generateCertificates(options)).rejects.toBeInstanceOf(CertificateOptionError);
    }
  });
});

describe('ipToBytes', () => {
  it('encodes an IPv6 address the same way whether written in full or compressed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), (groups) => {
        const full = groups.map((group) => group.toString(16)).join(':');
        const compressed = new URL(`http://[${full}]/`).hostname.slice(1, -1);
        const expected = String.fromCharCode(...groups.flatMap((group) => [group >> 8, group & 0xff]));
        expect(ipToBytes(full)).toBe(expected);
        expect(ipToBytes(compressed)).toBe(expected);
      }),
    );
  });

  it('encodes IPv4 and IPv4-mapped IPv6 addresses', () => {
    expect(ipToBytes('10.43.0.1')).toBe('\x0a\x2b\x00\x01');
    expect(ipToBytes('::ffff:10.43.0.1')).toBe(`${'\0'.repeat(10)}\xff\xff\x0a\x2b\x00\x01`);
  });
});

describe('a TLS server using the generated certificate', () => {
  let server: https.Server;
  let port: number;

  beforeAll(async () => {
    server = https.createServer({ cert: certs.tlsCert, key: certs.tlsKey }, (_req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.close();
  });

  function get(servername: string, trust: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, servername, ca: trust, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
    });
  }

  it('is trusted by a client whose only trust anchor is the CA, for the Service name', async () => {
    await expect(get('dfs-injector.dfs-system.svc', certs.caCert)).resolves.toBe('ok');
  });

  it('is refused for a name it does not carry', async () => {
    await expect(get('other.dfs-system.svc', certs.caCert)).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('is refused by a client that trusts a different CA', async () => {
    const other = await generateCertificates({ service: SERVICE, namespace: NAMESPACE });
    await expect(get('dfs-injector.dfs-system.svc', other.caCert)).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });
});
