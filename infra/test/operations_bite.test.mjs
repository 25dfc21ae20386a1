// The operations checks must bite: each breakage below, applied to a copy of the
// transformed template, must make the check that guards it fail (and the unbroken template
// must pass them all). A check that still passes on a broken template guards nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const checks = join(dirname(fileURLToPath(import.meta.url)), 'operations.test.mjs');

function transformed() {
  const path = process.env.TEMPLATE_JSON;
  assert.ok(path, 'TEMPLATE_JSON must name the transformed template (run .ci/test-infra)');
  return JSON.parse(readFileSync(path, 'utf8'));
}

// Runs the operations checks whose names match `pattern` on `template`; true if all pass.
function checksPass(template, pattern) {
  const file = join(mkdtempSync(join(tmpdir(), 'operations-bite-')), 'template.json');
  writeFileSync(file, JSON.stringify(template));
  const env = { ...process.env, TEMPLATE_JSON: file };
  // A nested run must report on its own, not to this run's test runner.
  delete env.NODE_TEST_CONTEXT;
  const args = ['--test', '--test-reporter=dot'];
  if (pattern) args.push(`--test-name-pattern=${pattern}`);
  const run = spawnSync(process.execPath, [...args, checks], { env, encoding: 'utf8' });
  return run.status === 0;
}

const origin = (t, id) => t.Resources.Distribution.Properties.DistributionConfig.Origins.find((o) => o.Id === id);

// [what is broken, the check that must catch it, the breakage]
const breakages = [
  ['a distribution in every region', 'one distribution', (t) => delete t.Resources.Distribution.Condition],
  [
    "the API origin is this region's execute-api endpoint",
    'latency-routed name',
    (t) => {
      origin(t, 'api').DomainName = { 'Fn::Sub': '${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}' };
    },
  ],
  ['the latency record has no health check', 'latency-routed name', (t) => delete t.Resources.ApiLatencyRecord.Properties.HealthCheckId],
  [
    'the voter cookie is not forwarded',
    'voter cookie',
    (t) => {
      t.Resources.ApiOriginRequestPolicy.Properties.OriginRequestPolicyConfig.CookiesConfig = { CookieBehavior: 'none' };
    },
  ],
  ['no site failover', 'fails over', (t) => delete t.Resources.Distribution.Properties.DistributionConfig.OriginGroups],
  [
    "the Pipe's missing data counts as healthy",
    'stalled Pipe',
    (t) => {
      const expression = t.Resources.PipeStalledAlarm.Properties.Metrics.find((m) => m.Expression);
      expression.Expression = 'IF(writes > 0 AND events == 0, 1, 0)';
    },
  ],
  ['no stalled-Pipe alarm', 'stalled Pipe', (t) => delete t.Resources.PipeStalledAlarm],
  ['no 4xx alarm', '4xx/429 storm', (t) => delete t.Resources.Api4xxRateAlarm],
  ['no aggregation lag alarm', 'aggregation lag', (t) => delete t.Resources.QueueAgeAlarm],
  ['CloudFront sends no origin secret', 'origin secret', (t) => delete origin(t, 'api').OriginCustomHeaders],
  [
    'query does not require the origin secret',
    'origin secret',
    (t) => delete t.Resources.QueryFunction.Properties.Environment.Variables.ORIGIN_VERIFY_SECRETS,
  ],
  ['the origin secret is echoed', 'origin secret', (t) => delete t.Parameters.OriginVerifySecret.NoEcho],
  [
    'ingest may BatchWriteItem',
    'may append only',
    (t) => {
      const statements = t.Resources.IngestRole.Properties.Policies[0].PolicyDocument.Statement;
      const ledger = statements.find((s) => JSON.stringify(s.Resource).includes('LedgerTableName'));
      ledger.Action = [ledger.Action].flat().concat('dynamodb:BatchWriteItem');
    },
  ],
];

test('the unbroken template passes every operations check', () => {
  assert.ok(checksPass(transformed(), null), 'operations.test.mjs fails on the template itself');
});

for (const [broken, check, breakIt] of breakages) {
  test(`caught: ${broken}`, () => {
    const template = transformed();
    // The same checks pass before the breakage, so their failure is the breakage's doing.
    assert.ok(checksPass(template, check), `the "${check}" check fails on the unbroken template`);
    breakIt(template);
    assert.ok(!checksPass(template, check), `the "${check}" check passes although ${broken}`);
  });
}
