import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../scheduler/config.js';
import { ConfigError } from '../scheduler/errors.js';

describe('configuration', () => {
  it('defaults: loopback, port 8080, embedded Postgres, four lanes', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.lanes.map((l) => l.name)).toEqual(['intake', 'verify', 'audit', 'replay']);
    expect(path.isAbsolute(config.home)).toBe(true);
  });

  it('environment variables set their keys', () => {
    const config = loadConfig({
      PORT: '9090',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://u:p@db:5432/pp',
      PROOFPOD_HOME: '/var/lib/proofpod',
    });
    expect(config).toMatchObject({ port: 9090, host: '0.0.0.0', databaseUrl: 'postgres://u:p@db:5432/pp', home: '/var/lib/proofpod' });
  });

  it.each([
    [{ PORT: 'eighty' }, /port: .*\(from environment variable PORT\)/],
    [{ PORT: '70000' }, /port: .*65535.*\(from environment variable PORT\)/],
    [{ DATABASE_URL: 'mysql://x' }, /databaseUrl: must be a postgres:\/\/ URL \(from environment variable DATABASE_URL\)/],
    [{ LOG_LEVEL: 'loud' }, /logLevel: .*\(from environment variable LOG_LEVEL\)/],
  ])('an invalid value stops start-up naming the key: %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('a config file is validated key by key, nested keys named in full', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'proofpod-config-'));
    const file = path.join(dir, 'proofpod.yaml');
    await writeFile(
      file,
      [
        'lanes:',
        '  - name: intake',
        '    trust: sometimes',
        '    concurrency: 0',
        'claims:',
        '  ttlSeconds: 10',
        '  heartbeatSeconds: 8',
        'colour: blue',
      ].join('\n'),
    );
    let message = '';
    try {
      loadConfig({ PROOFPOD_CONFIG: file });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/lanes\.0\.trust: .*\(from config file/);
    expect(message).toMatch(/lanes\.0\.concurrency: /);
    expect(message).toMatch(/claims\.heartbeatSeconds: heartbeatSeconds must be at most half of ttlSeconds/);
    expect(message).toMatch(/colour/);
  });

  it('lanes carry resources and placement; a bad quantity, an unknown key or a wrong promotion rule stops start-up naming it', async () => {
    const good = parseConfig({
      lanes: [
        {
          name: 'intake',
          trust: 'untrusted',
          concurrency: 2,
          resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '2Gi' } },
          nodeSelector: { pool: 'cheap' },
        },
        {
          name: 'verify',
          trust: 'trusted',
          concurrency: 4,
          tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'proofs', effect: 'NoSchedule' }],
        },
      ],
      promotion: [{ name: 'bots', from: 'intake', to: 'verify' }],
      quotas: { maxQueued: 50, submitters: { ci: { maxQueued: 500, maxRunning: 20 } } },
    });
    expect(good.lanes[0]!.resources).toEqual({ requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '2Gi' } });
    expect(good.quotas).toMatchObject({ maxQueued: 50, maxRunning: 100, retryAfterSeconds: 30 });
    const bad = () =>
      parseConfig({
        lanes: [
          { name: 'intake', trust: 'untrusted', concurrency: 2, resources: { limits: { cpu: 'lots' } }, nodeSelecter: {} },
          { name: 'verify', trust: 'trusted', concurrency: 4 },
        ],
        promotion: [{ name: 'up', from: 'verify', to: 'intake' }],
      });
    expect(bad).toThrow(/lanes\.0\.resources\.limits\.cpu: must be a Kubernetes quantity such as 500m or 2Gi/);
    expect(bad).toThrow(/nodeSelecter/);
    let message = '';
    try {
      parseConfig({ promotion: [{ name: 'up', from: 'verify', to: 'intake' }] });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/promotion\.0\.from: must name an untrusted lane \(verify is trusted\)/);
    expect(message).toMatch(/promotion\.0\.to: must name a trusted lane \(intake is untrusted\)/);
  });

  it('an unreadable or malformed file is named', async () => {
    expect(() => loadConfig({ PROOFPOD_CONFIG: '/nonexistent/proofpod.yaml' })).toThrow(
      /cannot read config file \/nonexistent\/proofpod.yaml/,
    );
    const dir = await mkdtemp(path.join(tmpdir(), 'proofpod-config-'));
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'lanes: [unclosed');
    expect(() => loadConfig({ PROOFPOD_CONFIG: file })).toThrow(/is not valid YAML or JSON/);
  });
});
