// infra/upload-client against a stand-in `aws` command that records its arguments: the
// hashed assets are cached forever, index.html for 5 minutes and uploaded last, and the
// entry point is invalidated. No AWS account is involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, chmodSync, mkdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const infra = join(dirname(fileURLToPath(import.meta.url)), '..');

function fakeRepo({ distribution = 'E123' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'upload-client-'));
  mkdirSync(join(dir, 'infra'));
  cpSync(join(infra, 'upload-client'), join(dir, 'infra', 'upload-client'));
  mkdirSync(join(dir, 'client', 'dist', 'assets'), { recursive: true });
  writeFileSync(join(dir, 'client', 'dist', 'index.html'), '<!doctype html>');
  writeFileSync(join(dir, 'client', 'dist', 'assets', 'index-abc123.js'), '');
  writeFileSync(join(dir, 'client', 'dist', 'favicon.svg'), '<svg/>');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const log = join(dir, 'aws.log');
  // Answers the two stack outputs and records every call, one per line.
  writeFileSync(join(bin, 'aws'), `#!/usr/bin/env bash
echo "$*" >> "${log}"
case "$*" in
  *SiteBucketName*) echo site-bucket ;;
  *DistributionId*) echo ${distribution} ;;
esac
`);
  chmodSync(join(bin, 'aws'), 0o755);
  return { dir, bin, log };
}

function run(repo, args) {
  return execFileSync('bash', [join(repo.dir, 'infra', 'upload-client'), ...args], {
    env: { ...process.env, PATH: `${repo.bin}:${process.env.PATH}` },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

test('assets are immutable, index.html is short-lived and goes last, then invalidated', () => {
  const repo = fakeRepo();
  run(repo, ['qa-stack', 'eu-west-1']);
  const calls = readFileSync(repo.log, 'utf8').trim().split('\n');
  const assets = calls.findIndex((c) => c.includes('s3 sync') && c.includes('/assets s3://site-bucket/assets'));
  const index = calls.findIndex((c) => c.includes('s3 cp') && c.includes('index.html s3://site-bucket/index.html'));
  const invalidation = calls.findIndex((c) => c.includes('create-invalidation'));
  assert.ok(assets >= 0 && index >= 0 && invalidation >= 0, calls.join('\n'));
  assert.match(calls[assets], /max-age=31536000, immutable/);
  assert.match(calls[index], /max-age=300/);
  assert.ok(assets < index && index < invalidation, 'order: assets, index.html, invalidation');
  assert.match(calls[invalidation], /--distribution-id E123/);
  for (const call of calls) {
    assert.match(call, /^--region eu-west-1 /, call);
  }
});

test('refuses to run without a client build', () => {
  const repo = fakeRepo();
  execFileSync('rm', ['-r', join(repo.dir, 'client', 'dist')]);
  assert.throws(() => run(repo, ['qa-stack']), /index.html is missing/);
});

test("another region's stack (no distribution) uploads its failover copy without invalidating", () => {
  // The AWS CLI prints None for an output the stack does not have.
  const repo = fakeRepo({ distribution: 'None' });
  const out = run(repo, ['qa-stack', 'eu-west-1']);
  const calls = readFileSync(repo.log, 'utf8').trim().split('\n');
  assert.ok(calls.some((c) => c.includes('s3 cp') && c.includes('s3://site-bucket/index.html')), calls.join('\n'));
  assert.ok(!calls.some((c) => c.includes('create-invalidation')), calls.join('\n'));
  assert.match(out, /failover copy/);
});
