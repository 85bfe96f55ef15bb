import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/*
 * X.509-SVIDs made with openssl, as SPIRE would hand them out: a trust domain's CA, and leaves with one URI SAN
 * (the SPIFFE ID), any validity window (`openssl ca -startdate/-enddate`, so an expired one is made as easily).
 */
export interface TrustDomain {
  readonly dir: string;
  readonly caPem: string;
  readonly caFile: string;
  /** A leaf for this ID, valid from `from` to `to` (default: an hour ago to a day ahead). Files: `${name}.pem`, `${name}.key` (0600). */
  issue(name: string, sans: string, window?: { from: Date; to: Date }): { certFile: string; keyFile: string };
}

const stamp = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');

export function trustDomain(dir: string, name: string): TrustDomain {
  mkdirSync(path.join(dir, 'newcerts'), { recursive: true });
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'serial'), '1000\n');
  const conf = path.join(dir, 'ca.cnf');
  writeFileSync(conf, `[ ca ]\ndefault_ca = d\n[ d ]\ndir = ${dir}\ndatabase = ${dir}/index.txt\nnew_certs_dir = ${dir}/newcerts\nserial = ${dir}/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\n[ any ]\ncommonName = optional\n[ req ]\ndistinguished_name = dn\n[ dn ]\n`);
  const caKey = path.join(dir, 'ca.key');
  const caFile = path.join(dir, 'ca.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caFile, '-subj', `/CN=${name}`, '-days', '3', '-config', conf,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', `subjectAltName=URI:spiffe://${name}`], { stdio: 'pipe' });
  const caPem = execFileSync('cat', [caFile]).toString();
  return {
    dir,
    caPem,
    caFile,
    issue(leaf, sans, window = { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 86_400_000) }) {
      const keyFile = path.join(dir, `${leaf}.key`);
      const csr = path.join(dir, `${leaf}.csr`);
      const certFile = path.join(dir, `${leaf}.pem`);
      const ext = path.join(dir, `${leaf}.ext`);
      writeFileSync(ext, `subjectAltName=${sans}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,serverAuth\n`);
      execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${leaf}`, '-config', conf], { stdio: 'pipe' });
      execFileSync('openssl', ['ca', '-batch', '-config', conf, '-cert', caFile, '-keyfile', caKey, '-in', csr, '-out', certFile, '-notext', '-startdate', stamp(window.from), '-enddate', stamp(window.to), '-extfile', ext], { stdio: 'pipe' });
      execFileSync('chmod', ['600', keyFile]);
      return { certFile, keyFile };
    },
  };
}
