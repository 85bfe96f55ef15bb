// A throwaway CA and a leaf for localhost/127.0.0.1: the upstream's certificate, and the bare MITM's.
import forge from 'node-forge';

export function makeTlsMaterial() {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const ca = forge.pki.createCertificate();
  ca.publicKey = keys.publicKey; ca.serialNumber = '01';
  ca.validity.notBefore = new Date(Date.now() - 3600e3); ca.validity.notAfter = new Date(Date.now() + 86400e3);
  ca.setSubject([{ name: 'commonName', value: 'bench CA' }]); ca.setIssuer([{ name: 'commonName', value: 'bench CA' }]);
  ca.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }]);
  ca.sign(keys.privateKey, forge.md.sha256.create());
  const leafKeys = forge.pki.rsa.generateKeyPair(2048);
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = leafKeys.publicKey; leaf.serialNumber = '02';
  leaf.validity.notBefore = ca.validity.notBefore; leaf.validity.notAfter = ca.validity.notAfter;
  leaf.setSubject([{ name: 'commonName', value: 'localhost' }]); leaf.setIssuer(ca.subject.attributes);
  leaf.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 2, value: 'api.example.test' }, { type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }]);
  leaf.sign(keys.privateKey, forge.md.sha256.create());
  return { caPem: forge.pki.certificateToPem(ca), certPem: forge.pki.certificateToPem(leaf), keyPem: forge.pki.privateKeyToPem(leafKeys.privateKey) };
}
