// The HTTP API as CloudFormation will create it, after the SAM transform: explicit routes
// only (an unknown path is API Gateway's 404 and never invokes a Lambda), each with its own
// throttling in the stage, payload format 2.0, and JSON access logs. The contract test
// (tests/infra_contract.rs) checks the same routes against the routers in the SAM source;
// this checks that the transform kept them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

function transformed() {
  const path = process.env.TEMPLATE_JSON;
  assert.ok(path, 'TEMPLATE_JSON must name the transformed template (run .ci/test-infra)');
  return JSON.parse(readFileSync(path, 'utf8'));
}

function routes(template) {
  const api = template.Resources.HttpApi;
  assert.equal(api.Type, 'AWS::ApiGatewayV2::Api');
  const keys = [];
  for (const [path, methods] of Object.entries(api.Properties.Body.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      keys.push({ key: `${method.toUpperCase()} ${path}`, operation });
    }
  }
  return keys;
}

test('only explicit routes exist: no catch-all, no ANY, no $default', () => {
  const template = transformed();
  const all = routes(template);
  assert.ok(all.length > 0, 'the API has no routes');
  for (const { key } of all) {
    assert.doesNotMatch(key, /\$default|\+\}|^X-AMAZON-APIGATEWAY-ANY-METHOD|^ANY /, key);
  }
  const separateRoutes = Object.values(template.Resources).filter((r) => r.Type === 'AWS::ApiGatewayV2::Route');
  assert.equal(separateRoutes.length, 0, 'routes other than the OpenAPI body');
});

test('every route invokes a Lambda with payload 2.0', () => {
  for (const { key, operation } of routes(transformed())) {
    const integration = operation['x-amazon-apigateway-integration'];
    assert.equal(integration.type, 'aws_proxy', key);
    assert.equal(integration.payloadFormatVersion, '2.0', key);
  }
});

test('the stage throttles every route on its own and logs JSON', () => {
  const template = transformed();
  const stages = Object.values(template.Resources).filter((r) => r.Type === 'AWS::ApiGatewayV2::Stage');
  assert.equal(stages.length, 1);
  const stage = stages[0].Properties;
  for (const { key } of routes(template)) {
    const settings = stage.RouteSettings[key];
    assert.ok(settings, `${key} has no route settings`);
    assert.ok(settings.ThrottlingRateLimit && settings.ThrottlingBurstLimit, `${key} is not throttled`);
  }
  assert.ok(stage.DefaultRouteSettings.ThrottlingRateLimit, 'no default throttling');
  const format = JSON.parse(stage.AccessLogSettings.Format);
  for (const field of ['requestId', 'routeKey', 'status', 'responseLatency']) {
    assert.ok(field in format, `access log lacks ${field}`);
  }
});

test('each function may be invoked only by this API', () => {
  const template = transformed();
  const permissions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Permission');
  assert.equal(permissions.length, routes(template).length, 'one permission per route');
  for (const permission of permissions) {
    assert.equal(permission.Properties.Principal, 'apigateway.amazonaws.com');
    assert.ok(JSON.stringify(permission.Properties.SourceArn).includes('HttpApi'), 'permission not scoped to the API');
  }
});
