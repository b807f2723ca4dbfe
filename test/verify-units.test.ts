import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { RelaisError } from '../src/shared/errors.js';
import { newId } from '../src/shared/ids.js';
import { codeMatches, generateCode, hashCode, newSalt } from '../src/verify/codes.js';
import { KEY_FILE, loadSealingSecret, registerSealer, Sealer, unsealText } from '../src/verify/sealing.js';
import { checkTemplate, DEFAULT_TEMPLATES, renderTemplate } from '../src/verify/templates.js';

describe('verification codes', () => {
  it('are decimal strings of the asked length, leading zeros kept, spread over every digit', () => {
    const seen = new Set<string>();
    for (const length of [4, 6, 10]) {
      for (let i = 0; i < 200; i++) {
        const code = generateCode(length);
        expect(code).toMatch(new RegExp(`^[0-9]{${length}}$`));
        for (const ch of code) seen.add(ch);
      }
    }
    expect(seen.size).toBe(10);
    // 4-digit codes starting with 0 happen (1 in 10): padding keeps them 4 digits long.
    const starts = Array.from({ length: 500 }, () => generateCode(4)[0]);
    expect(starts).toContain('0');
  });

  it('are stored as keyed, salted hashes and compared in constant time', () => {
    const key = new Sealer('k'.repeat(40)).codeKey;
    const id = newId('ver', Date.now());
    expect(id).toMatch(/^ver_[0-9A-HJKMNP-TV-Z]{26}$/);
    const salt = newSalt();
    const hash = hashCode(key, salt, id, '123456');
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain('123456');
    expect(codeMatches(key, salt, id, '123456', hash)).toBe(true);
    expect(codeMatches(key, salt, id, '123457', hash)).toBe(false);
    expect(codeMatches(key, salt, id, '12345', hash)).toBe(false);
    // Another salt, id or key gives another hash: rows cannot be compared or swapped.
    expect(hashCode(key, newSalt(), id, '123456')).not.toBe(hash);
    expect(hashCode(key, salt, newId('ver', Date.now()), '123456')).not.toBe(hash);
    expect(hashCode(new Sealer('j'.repeat(40)).codeKey, salt, id, '123456')).not.toBe(hash);
  });
});

describe('sealing', () => {
  it('round-trips, binds the tenant, and refuses altered texts', () => {
    const sealer = new Sealer('s'.repeat(40));
    const sealed = sealer.seal('Your code is 123456', 'ten_A');
    expect(sealed).toMatch(/^v1\.[0-9a-f]{12}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('123456');
    expect(sealer.seal('Your code is 123456', 'ten_A')).not.toBe(sealed); // random IV
    expect(sealer.unseal(sealed, 'ten_A')).toBe('Your code is 123456');
    expect(() => sealer.unseal(sealed, 'ten_B')).toThrow();
    const [v, kid, blob] = sealed.split('.');
    const flipped = Buffer.from(blob!, 'base64url');
    flipped[flipped.length - 1]! ^= 1;
    expect(() => sealer.unseal(`${v}.${kid}.${flipped.toString('base64url')}`, 'ten_A')).toThrow();
    expect(() => new Sealer('t'.repeat(40)).unseal(sealed, 'ten_A')).toThrow();
  });

  it('the dispatcher opens texts of any registered key, and falls back to the masked text otherwise', () => {
    const known = new Sealer('u'.repeat(40));
    const failures: string[] = [];
    registerSealer(known, (messageId) => failures.push(messageId));
    expect(unsealText(known.seal('code 4242', 'ten_A'), 'ten_A', 'msg_1', 'code ****')).toBe('code 4242');
    const unknown = new Sealer('v'.repeat(40));
    expect(unsealText(unknown.seal('code 4242', 'ten_A'), 'ten_A', 'msg_2', 'code ****')).toBe('code ****');
    expect(unsealText(known.seal('code 4242', 'ten_A'), 'ten_B', 'msg_3', 'code ****')).toBe('code ****');
    expect(failures).toEqual(['msg_2', 'msg_3']);
  });

  it('uses verify.sealing_key, or creates DATA_DIR/verify.key once, readable by its owner only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relais-verify-key-'));
    try {
      const configured = loadSealingSecret(
        parseConfig({ data_dir: dir, verify: { sealing_key: 'x'.repeat(32) } }),
      );
      expect(configured).toMatchObject({ source: 'config' });
      expect(() => parseConfig({ data_dir: dir, verify: { sealing_key: 'short' } })).toThrow(/sealing_key/);

      const config = parseConfig({ data_dir: dir });
      const first = loadSealingSecret(config);
      expect(first).toMatchObject({ source: 'file', created: true, looseMode: false });
      expect(statSync(join(dir, KEY_FILE)).mode & 0o777).toBe(0o600);
      const second = loadSealingSecret(config);
      expect(second.created).toBe(false);
      expect(second.secret.equals(first.secret)).toBe(true);
      expect(new Sealer(second.secret).keyId).toBe(new Sealer(first.secret).keyId);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('templates', () => {
  it('need {{code}} and know only {{code}} and {{minutes}}', () => {
    expect(() => checkTemplate('Your code: {{code}}')).not.toThrow();
    expect(() => checkTemplate('{{code}} valid {{minutes}} min')).not.toThrow();
    const missing = (() => {
      try {
        checkTemplate('Your code is coming');
      } catch (err) {
        return err as RelaisError;
      }
    })();
    expect(missing).toMatchObject({ code: 'invalid_template', field: 'template' });
    expect(() => checkTemplate('Your code: {{ code }}')).toThrow(/unknown placeholder/);
    expect(() => checkTemplate('{{code}} for {{name}}')).toThrow(/unknown placeholder \{\{name\}\}/);
  });

  it('render the code, and the same text masked digit for digit', () => {
    expect(renderTemplate(DEFAULT_TEMPLATES.en, '012345', 300)).toEqual({
      text: 'Your verification code is 012345. It expires in 5 min.',
      masked: 'Your verification code is ******. It expires in 5 min.',
    });
    expect(renderTemplate(DEFAULT_TEMPLATES.fr, '9876', 90).text).toBe(
      'Votre code de vérification est 9876. Il expire dans 2 min.',
    );
    expect(renderTemplate('{{code}}-{{code}}', '42424242', 60).masked).toBe('********-********');
  });
});
