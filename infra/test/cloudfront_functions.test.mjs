// The CloudFront Functions of infra/template.yaml, run on the events CloudFront hands them
// (viewer-request, cloudfront-js-2.0 event shape). Reads the functions' code from the
// transformed template named by TEMPLATE_JSON (written by .ci/test-infra), so what is
// tested is exactly what is deployed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

function loadHandler(logicalId) {
  const path = process.env.TEMPLATE_JSON;
  assert.ok(path, 'TEMPLATE_JSON must name the transformed template (run .ci/test-infra)');
  const template = JSON.parse(readFileSync(path, 'utf8'));
  const resource = template.Resources[logicalId];
  assert.ok(resource, `${logicalId} is missing from the template`);
  assert.equal(resource.Type, 'AWS::CloudFront::Function');
  assert.equal(resource.Properties.FunctionConfig.Runtime, 'cloudfront-js-2.0');
  // The function body declares `handler`; evaluate it in its own scope and hand it back.
  return new Function(`${resource.Properties.FunctionCode}\nreturn handler;`)();
}

function viewerRequest(method, uri, cookies = {}) {
  return {
    version: '1.0',
    context: { eventType: 'viewer-request' },
    viewer: { ip: '192.0.2.1' },
    request: { method, uri, querystring: {}, headers: {}, cookies },
  };
}

test('SPA rewrite sends /event/* to index.html', () => {
  const handler = loadHandler('SpaRewriteFunction');
  for (const uri of ['/event/01J0000000000000000000000', '/event/a/b', '/event/']) {
    assert.equal(handler(viewerRequest('GET', uri)).uri, '/index.html', uri);
  }
});

test('SPA rewrite leaves every other path alone, so missing files stay 404', () => {
  const handler = loadHandler('SpaRewriteFunction');
  for (const uri of ['/', '/index.html', '/assets/index-abc123.js', '/events', '/event', '/api/event/x', '/favicon.ico']) {
    assert.equal(handler(viewerRequest('GET', uri)).uri, uri, uri);
  }
});

test('API reads reach the origin without cookies', () => {
  const handler = loadHandler('ApiCookieFunction');
  const cookies = { voter: { value: '01J0000000000000000000000' }, tracking: { value: 'x' } };
  for (const method of ['GET', 'HEAD', 'OPTIONS']) {
    const request = handler(viewerRequest(method, '/api/event/e/questions', { ...cookies }));
    assert.deepEqual(request.cookies, {}, method);
  }
});

test('API writes keep the voter cookie and nothing else', () => {
  const handler = loadHandler('ApiCookieFunction');
  const request = handler(viewerRequest('POST', '/api/vote/q/up', {
    voter: { value: '01J0000000000000000000000' },
    tracking: { value: 'x' },
  }));
  assert.deepEqual(request.cookies, { voter: { value: '01J0000000000000000000000' } });
});

test("a guest's own view keeps the voter cookie; other reads of the event do not", () => {
  const handler = loadHandler('ApiCookieFunction');
  const cookies = () => ({ voter: { value: '01J0000000000000000000000' }, tracking: { value: 'x' } });
  const mine = handler(viewerRequest('GET', '/api/event/e/mine', cookies()));
  assert.deepEqual(mine.cookies, { voter: { value: '01J0000000000000000000000' } });
  const list = handler(viewerRequest('GET', '/api/event/e/questions', cookies()));
  assert.deepEqual(list.cookies, {});
});

test('API writes without a voter cookie go through with none (ingest mints one)', () => {
  const handler = loadHandler('ApiCookieFunction');
  const request = handler(viewerRequest('POST', '/api/event', { tracking: { value: 'x' } }));
  assert.deepEqual(request.cookies, {});
  assert.equal(request.uri, '/api/event');
});
