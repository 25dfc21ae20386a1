// What an operator relies on, checked on the template as CloudFormation will receive it
// (after the SAM transform): one hostname across regions, alarms that see a stalled Pipe,
// a 4xx/429 storm and aggregation lag, the origin secret CloudFront adds and the functions
// require, ingest's role (conditional puts only), and the stripped Lambda build profile.
// Each test names what it guards against; tests/infra_contract.rs checks the template
// against the code, these check the deployment's shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function transformed() {
  const path = process.env.TEMPLATE_JSON;
  assert.ok(path, 'TEMPLATE_JSON must name the transformed template (run .ci/test-infra)');
  return JSON.parse(readFileSync(path, 'utf8'));
}

function resource(template, name, type) {
  const found = template.Resources[name];
  assert.ok(found, `the template has no ${name}`);
  if (type) assert.equal(found.Type, type, name);
  return found;
}

const isRef = (value, name) => value !== null && typeof value === 'object' && value.Ref === name;
const isGetAtt = (value, name, attribute) =>
  value !== null &&
  typeof value === 'object' &&
  Array.isArray(value['Fn::GetAtt']) &&
  value['Fn::GetAtt'][0] === name &&
  value['Fn::GetAtt'][1] === attribute;

// A condition's definition as the transformed template holds it, with `Fn::Or [a, b]` etc.
function condition(template, name) {
  const found = template.Conditions?.[name];
  assert.ok(found, `no condition ${name}`);
  return found;
}

// `{"Fn::If": [cond, yes, no]}` as [cond, yes, no].
function ifBranches(value, what) {
  assert.ok(value && Array.isArray(value['Fn::If']), `${what} is not an Fn::If: ${JSON.stringify(value)}`);
  return value['Fn::If'];
}

// ------------------------------------------------------------------ one hostname
test('one distribution, created only by the home (primary) stack', () => {
  const template = transformed();
  const distributions = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::CloudFront::Distribution');
  assert.equal(distributions.length, 1, 'one distribution');
  const [name, distribution] = distributions[0];
  assert.equal(distribution.Condition, 'IsPrimaryRegion', `${name} is created in every region`);
  // Primary = the home region, whose stack also creates the global tables: HomeRegion
  // empty, or this region.
  const primary = JSON.stringify(condition(template, 'IsPrimaryRegion'));
  assert.match(primary, /"HomeRegion"\},""\]/, `IsPrimaryRegion: ${primary}`);
  assert.match(primary, /"HomeRegion"\},\{"Ref":"AWS::Region"\}\]/, `IsPrimaryRegion: ${primary}`);
  for (const table of ['EventsTable', 'LedgerTable']) {
    assert.equal(template.Resources[table].Condition, 'IsPrimaryRegion', table);
  }
  // Everything CloudFront-global it uses is created with it, never twice in one account.
  for (const [other, r] of Object.entries(template.Resources)) {
    if (r.Type.startsWith('AWS::CloudFront::')) {
      assert.equal(r.Condition, 'IsPrimaryRegion', `${other} would be created by every regional stack`);
    }
  }
});

test("the API origin is the shared, latency-routed name over every region's API", () => {
  const template = transformed();
  const config = resource(template, 'Distribution').Properties.DistributionConfig;
  const api = config.Origins.find((o) => o.Id === 'api');
  assert.ok(api, 'no api origin');
  const [cond, shared, single] = ifBranches(api.DomainName, "the api origin's DomainName");
  assert.equal(cond, 'HasApiDomain');
  assert.ok(isRef(shared, 'ApiDomainName'), `with a domain the origin is ApiDomainName: ${JSON.stringify(shared)}`);
  assert.match(JSON.stringify(single), /execute-api/, 'without one, this region\'s endpoint');

  // Each regional stack: a custom domain of that name on its own API, and a health-checked
  // latency record for its region pointing at it.
  const domain = resource(template, 'ApiDomain', 'AWS::ApiGatewayV2::DomainName');
  assert.ok(isRef(domain.Properties.DomainName, 'ApiDomainName'));
  assert.equal(domain.Properties.DomainNameConfigurations[0].EndpointType, 'REGIONAL');
  const mapping = resource(template, 'ApiDomainMapping', 'AWS::ApiGatewayV2::ApiMapping');
  assert.ok(isRef(mapping.Properties.ApiId, 'HttpApi') && isRef(mapping.Properties.DomainName, 'ApiDomain'));
  const record = resource(template, 'ApiLatencyRecord', 'AWS::Route53::RecordSet').Properties;
  assert.ok(isRef(record.Name, 'ApiDomainName'), 'the record is for the shared name');
  assert.ok(isRef(record.Region, 'AWS::Region') && isRef(record.SetIdentifier, 'AWS::Region'), 'latency, per region');
  assert.ok(isGetAtt(record.AliasTarget.DNSName, 'ApiDomain', 'RegionalDomainName'));
  assert.ok(isGetAtt(record.AliasTarget.HostedZoneId, 'ApiDomain', 'RegionalHostedZoneId'));
  assert.ok(isRef(record.HealthCheckId, 'RegionHealthCheck'), 'an unhealthy region must drop out of DNS');
  const health = resource(template, 'RegionHealthCheck', 'AWS::Route53::HealthCheck').Properties.HealthCheckConfig;
  assert.equal(health.Type, 'CALCULATED');
  assert.equal(health.HealthThreshold, health.ChildHealthChecks.length, 'every child must be healthy');
  const children = health.ChildHealthChecks.map((c) => template.Resources[c.Ref]?.Properties.HealthCheckConfig);
  assert.ok(children.some((c) => c?.Type === 'TCP'), 'reachability');
  assert.ok(children.some((c) => c?.Type === 'CLOUDWATCH_METRIC'), 'server errors');
  for (const name of ['ApiDomain', 'ApiDomainMapping', 'ApiLatencyRecord', 'RegionHealthCheck']) {
    assert.equal(template.Resources[name].Condition, 'HasApiDomain', name);
  }
});

test('the voter cookie stays valid across regions: one host, forwarded on writes', () => {
  const template = transformed();
  const config = resource(template, 'Distribution').Properties.DistributionConfig;
  // The guest only ever talks to the distribution's one hostname (regions are origins
  // behind it), so the host-only voter cookie is the same whichever region answers.
  const aliases = ifBranches(config.Aliases, 'Aliases');
  assert.ok(isRef(aliases[1][0], 'DomainName') && aliases[1].length === 1, 'one alias');
  const api = config.CacheBehaviors.find((b) => b.PathPattern === '/api/*');
  const policy = resource(template, 'ApiOriginRequestPolicy').Properties.OriginRequestPolicyConfig;
  assert.ok(isRef(api.OriginRequestPolicyId, 'ApiOriginRequestPolicy'));
  assert.deepEqual(policy.CookiesConfig, { CookieBehavior: 'whitelist', Cookies: ['voter'] });
  // Route 53 may answer another region from one request to the next; nothing regional
  // may be part of the site's address.
  assert.doesNotMatch(JSON.stringify(aliases), /AWS::Region/);
});

test('the site fails over to another region\'s bucket when one is given', () => {
  const template = transformed();
  const config = resource(template, 'Distribution').Properties.DistributionConfig;
  const [cond, group] = ifBranches(config.OriginGroups, 'OriginGroups');
  assert.equal(cond, 'HasSiteFailover');
  const members = group.Items[0].Members.Items.map((m) => m.OriginId);
  assert.deepEqual(members, ['site', 'site-failover']);
  for (const code of [500, 502, 503, 504]) {
    assert.ok(group.Items[0].FailoverCriteria.StatusCodes.Items.includes(code), `fails over on ${code}`);
  }
  const [, target] = ifBranches(config.DefaultCacheBehavior.TargetOriginId, 'the default TargetOriginId');
  assert.equal(target, group.Items[0].Id);
  // The other region's bucket lets the home stack's distribution read it.
  const policy = resource(template, 'SiteBucketPolicy').Properties.PolicyDocument.Statement[0];
  assert.match(JSON.stringify(policy.Condition), /SiteDistributionId/);
});

// ------------------------------------------------------------------ alarms
function alarm(template, name) {
  return resource(template, name, 'AWS::CloudWatch::Alarm').Properties;
}
function metricOf(query) {
  return query.MetricStat?.Metric;
}

test('a stalled Pipe alarms: ledger writes while the Pipe handles nothing, its silence breaching', () => {
  const template = transformed();
  const stalled = alarm(template, 'PipeStalledAlarm');
  const queries = Object.fromEntries(stalled.Metrics.map((m) => [m.Id, m]));
  const writes = Object.values(queries).find(
    (m) => metricOf(m)?.Namespace === 'AWS/DynamoDB' && metricOf(m).MetricName === 'ConsumedWriteCapacityUnits',
  );
  assert.ok(writes, 'watches the ledger table\'s writes');
  assert.ok(isRef(metricOf(writes).Dimensions[0].Value, 'LedgerTableName'), 'of the ledger');
  const pipe = Object.values(queries).find((m) => metricOf(m)?.Namespace === 'AWS/EventBridge/Pipes');
  assert.ok(pipe, "watches the Pipe's own metric");
  assert.ok(['EventCount', 'Invocations'].includes(metricOf(pipe).MetricName), metricOf(pipe).MetricName);
  assert.ok(isRef(metricOf(pipe).Dimensions[0].Value, 'LedgerPipe'));
  const expression = stalled.Metrics.find((m) => m.ReturnData !== false && m.Expression);
  assert.ok(expression, 'a metric math alarm');
  const text = expression.Expression.replace(/\s+/g, '');
  // A stopped Pipe publishes nothing: its missing data must count as zero events.
  assert.ok(text.includes(`FILL(${pipe.Id},0)==0`), `the Pipe's missing data is not breaching: ${text}`);
  assert.ok(text.includes(`${writes.Id}>0`), `fires only when the ledger was written: ${text}`);
  assert.ok(stalled.AlarmActions.length > 0, 'notifies');
});

test('a 4xx/429 storm on the HTTP API alarms', () => {
  const template = transformed();
  const storm = alarm(template, 'Api4xxRateAlarm');
  const metrics = storm.Metrics.map(metricOf).filter(Boolean);
  assert.ok(metrics.some((m) => m.Namespace === 'AWS/ApiGateway' && m.MetricName === '4xx'), '4xx (incl. 429)');
  assert.ok(metrics.some((m) => m.MetricName === 'Count'), 'as a share of requests');
  for (const m of metrics) assert.ok(isRef(m.Dimensions[0].Value, 'HttpApi'));
  assert.ok(storm.Threshold > 0 && storm.Threshold < 100, `threshold ${storm.Threshold}%`);
  assert.ok(storm.AlarmActions.length > 0);
  // The WAF's own 429s never reach the API: they have their own alarm where the ACL lives.
  const waf = alarm(template, 'WafRateLimitedAlarm');
  assert.equal(waf.Namespace, 'AWS/WAFV2');
  assert.equal(waf.MetricName, 'BlockedRequests');
  assert.equal(template.Resources.WafRateLimitedAlarm.Condition, 'CreatesWebAcl');
});

test('aggregation lag alarms on the age of the oldest queued record', () => {
  const template = transformed();
  const lag = alarm(template, 'QueueAgeAlarm');
  assert.equal(lag.Namespace, 'AWS/SQS');
  assert.equal(lag.MetricName, 'ApproximateAgeOfOldestMessage');
  assert.ok(isGetAtt(lag.Dimensions[0].Value, 'AggregatorQueue', 'QueueName'), 'of the aggregator queue');
  assert.ok(lag.Threshold > 0 && lag.Threshold <= 300, `lag threshold ${lag.Threshold} s`);
  assert.ok(lag.AlarmActions.length > 0);
});

// ------------------------------------------------------------------ origin secret
test('CloudFront sends the origin secret and both HTTP functions require it', () => {
  const template = transformed();
  const secret = template.Parameters.OriginVerifySecret;
  assert.equal(secret.NoEcho, true, 'the secret is NoEcho');
  assert.ok(secret.Default === undefined, 'no default secret');
  assert.ok(secret.MinLength >= 32, 'a guessable secret protects nothing');
  assert.equal(template.Parameters.OriginVerifySecretPrevious?.NoEcho, true, 'the rotation value is NoEcho');

  const config = resource(template, 'Distribution').Properties.DistributionConfig;
  const api = config.Origins.find((o) => o.Id === 'api');
  const header = (api.OriginCustomHeaders ?? []).find((h) => h.HeaderName.toLowerCase() === 'x-origin-verify');
  assert.ok(header, 'CloudFront adds no x-origin-verify header');
  assert.ok(isRef(header.HeaderValue, 'OriginVerifySecret'));

  for (const name of ['IngestFunction', 'QueryFunction']) {
    const variables = resource(template, name, 'AWS::Lambda::Function').Properties.Environment?.Variables ?? {};
    const [cond, both, current] = ifBranches(variables.ORIGIN_VERIFY_SECRETS, `${name}'s ORIGIN_VERIFY_SECRETS`);
    assert.equal(cond, 'HasPreviousOriginSecret');
    assert.ok(isRef(current, 'OriginVerifySecret'), name);
    const joined = both['Fn::Join'];
    assert.ok(joined && joined[0] === ',', `${name}: two values during a rotation`);
    assert.ok(isRef(joined[1][0], 'OriginVerifySecret') && isRef(joined[1][1], 'OriginVerifySecretPrevious'), name);
  }
});

// ------------------------------------------------------------------ ingest's role
test("ingest's role may append only: PutItem (conditional in the adapter), never a batch or an update", () => {
  const template = transformed();
  const role = resource(template, 'IngestRole', 'AWS::IAM::Role');
  const statements = role.Properties.Policies.flatMap((p) => p.PolicyDocument.Statement);
  const actions = statements.flatMap((s) => [s.Action].flat());
  for (const forbidden of [
    'dynamodb:BatchWriteItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:TransactWriteItems',
    'dynamodb:PartiQLInsert',
    'dynamodb:PartiQLUpdate',
    'dynamodb:PartiQLDelete',
  ]) {
    assert.ok(!actions.includes(forbidden), `ingest may ${forbidden}`);
  }
  assert.ok(!actions.some((a) => a.includes('*')), 'no wildcard action');
  const ledger = statements.find((s) => JSON.stringify(s.Resource).includes('LedgerTableName'));
  assert.deepEqual([ledger.Action].flat(), ['dynamodb:PutItem'], 'on the ledger: PutItem only');
});

// ------------------------------------------------------------------ Lambda build
test('the Lambda binaries are built stripped and size-optimised, panics still unwinding', () => {
  const manifest = readFileSync(join(root, 'Cargo.toml'), 'utf8');
  const section = (name) => {
    const match = manifest.match(new RegExp(`^\\[profile\\.${name}\\]\\n([\\s\\S]*?)(?=^\\[|(?![\\s\\S]))`, 'm'));
    assert.ok(match, `Cargo.toml has no [profile.${name}]`);
    return Object.fromEntries(
      match[1]
        .split('\n')
        .map((line) => line.replace(/#.*/, '').trim())
        .filter(Boolean)
        .map((line) => line.split('=').map((part) => part.trim().replace(/^"|"$/g, ''))),
    );
  };
  const lambda = section('lambda');
  assert.equal(lambda.inherits, 'release');
  assert.ok(['true', 'symbols'].includes(lambda.strip), `strip = ${lambda.strip}`);
  assert.ok(['false', 'none', '0'].includes(lambda.debug), `debug = ${lambda.debug}`);
  assert.ok(['s', 'z', '3'].includes(lambda['opt-level']), `opt-level = ${lambda['opt-level']}`);
  assert.ok(['true', 'fat', 'thin'].includes(lambda.lto), `lto = ${lambda.lto}`);
  assert.equal(lambda['codegen-units'], '1');
  // The roles catch a handler's panic per request; abort would kill every request in flight.
  assert.equal(lambda.panic ?? section('release').panic, 'unwind', 'the lambda profile must unwind');
  // cargo-lambda adds panic = "abort" to a release profile that names no strategy.
  assert.equal(section('release').panic, 'unwind', 'release must name panic = "unwind"');
  const config = readFileSync(join(root, 'infra', 'cargo-lambda.toml'), 'utf8');
  assert.match(config, /^profile\s*=\s*"lambda"\s*$/m, 'infra/cargo-lambda.toml builds with the lambda profile');
});
