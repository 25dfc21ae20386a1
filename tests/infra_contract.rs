//! The deployment template (`infra/template.yaml`) checked against the code it deploys:
//! the HTTP API has exactly the routers' routes, the tables have exactly the keys, index
//! and attributes the DynamoDB adapter uses, each function's role allows exactly the
//! actions its adapter calls, and the limits the template sets agree with the named limits
//! in the code. cfn-lint and checkov check the template's form (`.ci/test-infra`); this
//! checks its meaning, so a rename on either side fails here rather than in production.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ledger_dynamodb::schema;
use serde_yaml_ng::{Mapping, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The parsed template plus the lookups the checks need. CloudFormation's short-form tags
/// (`!Ref`, `!GetAtt`, `!Sub`) parse as tagged values; the long forms (`Ref:`,
/// `Fn::GetAtt:`) are read the same way.
struct Template {
    doc: Value,
}

impl Template {
    fn load() -> Template {
        let path = root().join("infra/template.yaml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let doc =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|error| panic!("{} is not YAML: {error}", path.display()));
        Template { doc }
    }

    fn resource(&self, name: &str) -> &Value {
        let resource = &self.doc["Resources"][name];
        assert!(resource.is_mapping(), "the template has no resource {name}");
        resource
    }

    fn resources_of_type(&self, kind: &str) -> Vec<(String, &Value)> {
        mapping(&self.doc["Resources"])
            .iter()
            .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
            .map(|(name, resource)| (name.as_str().unwrap_or_default().to_owned(), resource))
            .collect()
    }

    fn parameter_default(&self, name: &str) -> Option<String> {
        scalar(&self.doc["Parameters"][name]["Default"])
    }

    /// A property's value with a `!Ref` to a parameter replaced by that parameter's default
    /// (what an operator gets without overriding anything).
    fn resolve(&self, value: &Value) -> Option<String> {
        match intrinsic(value) {
            Some(("Ref", name)) => self.parameter_default(name.as_str()?),
            Some(_) => None,
            None => scalar(value),
        }
    }

    /// A property that must be exactly `!Ref <parameter>`, returning the parameter.
    fn referenced_parameter<'a>(&self, value: &'a Value) -> Option<&'a str> {
        match intrinsic(value) {
            Some(("Ref", name)) if self.doc["Parameters"][name.as_str()?].is_mapping() => name.as_str(),
            _ => None,
        }
    }

    /// `${Param}` in a `!Sub` string replaced by the parameter's default. Pseudo parameters
    /// are left as they are.
    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &rest[start + 2..start + end];
            match self.parameter_default(name) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&rest[start..start + end + 1]),
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn mapping(value: &Value) -> &Mapping {
    value.as_mapping().unwrap_or_else(|| panic!("expected a mapping, found {value:?}"))
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// `(function, argument)` of an intrinsic function in either YAML form.
fn intrinsic(value: &Value) -> Option<(&str, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let name = ["Ref", "GetAtt", "Sub", "If", "Join", "Select", "Split", "Not", "Equals"]
                .into_iter()
                .find(|known| *known == name)?;
            Some((name, &tagged.value))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, argument) = map.iter().next()?;
            let key = key.as_str()?;
            let name = if key == "Ref" { key } else { key.strip_prefix("Fn::")? };
            Some((name, argument))
        }
        _ => None,
    }
}

/// `!GetAtt Resource.Attribute` (or the list form) as (resource, attribute).
fn get_att(value: &Value) -> Option<(String, String)> {
    match intrinsic(value)? {
        ("GetAtt", Value::String(dotted)) => {
            let (resource, attribute) = dotted.split_once('.')?;
            Some((resource.to_owned(), attribute.to_owned()))
        }
        ("GetAtt", Value::Sequence(parts)) if parts.len() == 2 => Some((scalar(&parts[0])?, scalar(&parts[1])?)),
        _ => None,
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn strings(value: &Value) -> BTreeSet<String> {
    as_list(value).into_iter().filter_map(scalar).collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

/// The (method, path) of every HTTP API event of a function.
fn http_routes(function: &Value) -> BTreeSet<(String, String)> {
    mapping(&function["Properties"]["Events"])
        .values()
        .filter(|event| event["Type"].as_str() == Some("HttpApi"))
        .map(|event| {
            let method = scalar(&event["Properties"]["Method"]).unwrap_or_default();
            let path = scalar(&event["Properties"]["Path"]).unwrap_or_default();
            (method, path)
        })
        .collect()
}

#[test]
fn the_http_api_has_exactly_the_routes_of_the_routers() {
    let template = Template::load();
    let ingest_routes = http_routes(template.resource("IngestFunction"));
    let query_routes = http_routes(template.resource("QueryFunction"));

    assert_eq!(ingest_routes, pairs(ingest::ROUTES), "IngestFunction's HttpApi events differ from ingest::ROUTES");
    assert_eq!(query_routes, pairs(query::ROUTES), "QueryFunction's HttpApi events differ from query::ROUTES");

    // Embedded-only routes stay off API Gateway: SSE cannot stream through an HTTP API, and
    // health and metrics come from CloudWatch on AWS.
    let aws_only: BTreeSet<_> = ingest_routes.union(&query_routes).cloned().collect();
    for route in pairs(query::LIVE_ROUTES).iter().chain(pairs(query::OPS_ROUTES).iter()) {
        assert!(!aws_only.contains(route), "{route:?} is embedded-only but the template exposes it");
    }

    // No other function answers HTTP, and no catch-all route exists, so an unknown path is
    // API Gateway's 404 and never invokes a Lambda.
    for (name, function) in template.resources_of_type("AWS::Serverless::Function") {
        if name != "IngestFunction" && name != "QueryFunction" {
            assert!(http_routes(function).is_empty(), "{name} has HttpApi events");
        }
    }
    for (method, path) in &aws_only {
        assert_ne!(method, "ANY", "{path} is routed for ANY method");
        assert!(!path.contains('+') && !path.contains('*') && !path.contains("$default"), "{path} is a catch-all");
    }
    assert!(
        template.resources_of_type("AWS::ApiGatewayV2::Route").is_empty(),
        "routes are declared only as function events"
    );
}

#[test]
fn every_api_route_uses_payload_2_and_has_its_own_throttling() {
    let template = Template::load();
    for name in ["IngestFunction", "QueryFunction"] {
        for event in mapping(&template.resource(name)["Properties"]["Events"]).values() {
            let properties = &event["Properties"];
            let path = scalar(&properties["Path"]).unwrap_or_default();
            assert_eq!(scalar(&properties["PayloadFormatVersion"]).as_deref(), Some("2.0"), "{name} {path}");
            assert!(
                matches!(intrinsic(&properties["ApiId"]), Some(("Ref", id)) if id.as_str() == Some("HttpApi")),
                "{name} {path} is not on HttpApi"
            );
            for limit in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
                let value = template.resolve(&properties["RouteSettings"][limit]);
                let value: u64 =
                    value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} {path} has no {limit}"));
                assert!(value > 0, "{name} {path}: {limit} is 0");
            }
        }
    }
    let api = &template.resource("HttpApi")["Properties"];
    assert_eq!(
        get_att(&api["AccessLogSettings"]["DestinationArn"]),
        Some(("ApiAccessLogGroup".to_owned(), "Arn".to_owned())),
        "the HTTP API has no access log"
    );
    let format = scalar(&api["AccessLogSettings"]["Format"]).unwrap_or_default();
    let fields: serde_json::Value =
        serde_json::from_str(&format).unwrap_or_else(|error| panic!("the access log format is not JSON: {error}"));
    for field in ["requestId", "routeKey", "status", "integrationError"] {
        assert!(fields.get(field).is_some(), "the access log lacks {field}");
    }
}

/// The key schema of a table (or index) as (attribute, key type, attribute type).
fn keys(table: &Value, key_schema: &Value) -> Vec<(String, String, String)> {
    let definitions = &table["Properties"]["AttributeDefinitions"];
    as_list(key_schema)
        .into_iter()
        .map(|key| {
            let attribute = scalar(&key["AttributeName"]).unwrap_or_default();
            let kind = as_list(definitions)
                .into_iter()
                .find(|definition| scalar(&definition["AttributeName"]).as_deref() == Some(attribute.as_str()))
                .and_then(|definition| scalar(&definition["AttributeType"]))
                .unwrap_or_else(|| panic!("{attribute} has no AttributeDefinition"));
            (attribute, scalar(&key["KeyType"]).unwrap_or_default(), kind)
        })
        .collect()
}

fn key(attribute: &str, key_type: &str, attribute_type: &str) -> (String, String, String) {
    (attribute.to_owned(), key_type.to_owned(), attribute_type.to_owned())
}

/// Checks what every table shares: its name's default, on-demand billing, TTL on the
/// adapter's attribute, point-in-time recovery and deletion protection (on every replica
/// for global tables), and that it outlives its stack.
fn check_table(template: &Template, logical: &str, kind: &str, default_name: &str, name_env: &str) {
    let table = template.resource(logical);
    let properties = &table["Properties"];
    assert_eq!(table["Type"].as_str(), Some(kind), "{logical}");
    assert_eq!(template.resolve(&properties["TableName"]).as_deref(), Some(default_name), "{logical}'s default name");
    assert_eq!(properties["BillingMode"].as_str(), Some("PAY_PER_REQUEST"), "{logical} is not on-demand");
    assert_eq!(
        scalar(&properties["TimeToLiveSpecification"]["AttributeName"]).as_deref(),
        Some(schema::TTL_ATTRIBUTE),
        "{logical}'s TTL attribute"
    );
    assert_eq!(properties["TimeToLiveSpecification"]["Enabled"].as_bool(), Some(true), "{logical}'s TTL is off");
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"), "{logical} would be deleted with its stack");

    let replicas: Vec<&Value> = if kind == "AWS::DynamoDB::GlobalTable" {
        // Conditional replicas are `!If [cond, replica, !Ref AWS::NoValue]`.
        as_list(&properties["Replicas"])
            .into_iter()
            .map(|replica| match intrinsic(replica) {
                Some(("If", Value::Sequence(branches))) if branches.len() == 3 => &branches[1],
                _ => replica,
            })
            .collect()
    } else {
        vec![properties]
    };
    assert!(!replicas.is_empty(), "{logical} has no replica");
    for replica in replicas {
        assert_eq!(
            replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{logical}: PITR"
        );
        assert_eq!(replica["DeletionProtectionEnabled"].as_bool(), Some(true), "{logical}: deletion protection");
    }

    // The functions learn the name from the environment variable the adapter reads.
    let variable = &template.doc["Globals"]["Function"]["Environment"]["Variables"][name_env];
    let parameter =
        template.referenced_parameter(variable).unwrap_or_else(|| panic!("{name_env} is not a parameter reference"));
    assert!(
        matches!(intrinsic(&properties["TableName"]), Some(("Ref", p)) if p.as_str() == Some(parameter)),
        "{name_env} and {logical}'s TableName use different parameters"
    );
}

#[test]
fn the_tables_match_the_dynamodb_adapter() {
    let template = Template::load();
    check_table(&template, "EventsTable", "AWS::DynamoDB::GlobalTable", schema::EVENTS_TABLE, schema::EVENTS_TABLE_ENV);
    check_table(&template, "LedgerTable", "AWS::DynamoDB::GlobalTable", schema::LEDGER_TABLE, schema::LEDGER_TABLE_ENV);
    check_table(
        &template,
        "QuestionsTable",
        "AWS::DynamoDB::Table",
        schema::QUESTIONS_TABLE,
        schema::QUESTIONS_TABLE_ENV,
    );
    check_table(&template, "VotersTable", "AWS::DynamoDB::Table", schema::VOTERS_TABLE, schema::VOTERS_TABLE_ENV);

    let events = template.resource("EventsTable");
    assert_eq!(keys(events, &events["Properties"]["KeySchema"]), vec![key(schema::EVENTS_KEY, "HASH", "S")]);

    let ledger = template.resource("LedgerTable");
    assert_eq!(
        keys(ledger, &ledger["Properties"]["KeySchema"]),
        vec![key(schema::LEDGER_PARTITION_KEY, "HASH", "S"), key(schema::LEDGER_SORT_KEY, "RANGE", "S")]
    );
    // The aggregator decodes NewImage: the stream must carry it.
    assert_eq!(scalar(&ledger["Properties"]["StreamSpecification"]["StreamViewType"]).as_deref(), Some("NEW_IMAGE"));

    let questions = template.resource("QuestionsTable");
    assert_eq!(keys(questions, &questions["Properties"]["KeySchema"]), vec![key(schema::QUESTIONS_KEY, "HASH", "S")]);
    let indexes = as_list(&questions["Properties"]["GlobalSecondaryIndexes"]);
    assert_eq!(indexes.len(), 1, "questions has exactly one index");
    let top = indexes[0];
    assert_eq!(scalar(&top["IndexName"]).as_deref(), Some(schema::TOP_INDEX));
    assert_eq!(
        keys(questions, &top["KeySchema"]),
        vec![key(schema::TOP_PARTITION_KEY, "HASH", "S"), key(schema::TOP_SORT_KEY, "RANGE", "N")]
    );
    assert_eq!(scalar(&top["Projection"]["ProjectionType"]).as_deref(), Some("INCLUDE"));
    let projected: BTreeSet<String> = schema::TOP_PROJECTED.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(strings(&top["Projection"]["NonKeyAttributes"]), projected, "top's projected attributes");

    let voters = template.resource("VotersTable");
    assert_eq!(
        keys(voters, &voters["Properties"]["KeySchema"]),
        vec![key(schema::VOTERS_PARTITION_KEY, "HASH", "S"), key(schema::VOTERS_SORT_KEY, "RANGE", "S")]
    );

    // Attribute definitions may only name key attributes (DynamoDB rejects others), so
    // nothing unused hides there.
    for (logical, table) in template
        .resources_of_type("AWS::DynamoDB::Table")
        .into_iter()
        .chain(template.resources_of_type("AWS::DynamoDB::GlobalTable"))
    {
        let defined = as_list(&table["Properties"]["AttributeDefinitions"]).len();
        let mut used: BTreeSet<String> =
            keys(table, &table["Properties"]["KeySchema"]).into_iter().map(|(name, _, _)| name).collect();
        for index in as_list(&table["Properties"]["GlobalSecondaryIndexes"]) {
            used.extend(keys(table, &index["KeySchema"]).into_iter().map(|(name, _, _)| name));
        }
        assert_eq!(defined, used.len(), "{logical} defines attributes no key uses");
    }

    // The list max-ages default to the query role's own defaults.
    let query_env = &template.resource("QueryFunction")["Properties"]["Environment"]["Variables"];
    let defaults = query::QueryConfig::default();
    let guest = &query_env[query_lambda::GUEST_MAX_AGE_ENV];
    let host = &query_env[query_lambda::HOST_MAX_AGE_ENV];
    assert_eq!(template.resolve(guest), Some(defaults.guest_max_age_s.to_string()), "guest list max-age");
    assert_eq!(template.resolve(host), Some(defaults.host_max_age_s.to_string()), "host list max-age");

    let retention = &template.doc["Globals"]["Function"]["Environment"]["Variables"][schema::RETENTION_DAYS_ENV];
    assert_eq!(
        template.resolve(retention),
        Some(ledger::limits::RETENTION_DAYS_DEFAULT.to_string()),
        "the default retention"
    );
}

/// The role a function runs as, by its `Role: !GetAtt <Role>.Arn`.
fn function_role<'t>(template: &'t Template, function: &str) -> (&'t Value, String) {
    let properties = &template.resource(function)["Properties"];
    assert!(properties["Policies"].is_null(), "{function} lets SAM add policies; its role must be explicit");
    let (role, attribute) = get_att(&properties["Role"]).unwrap_or_else(|| panic!("{function} has no explicit Role"));
    assert_eq!(attribute, "Arn");
    (template.resource(&role), role)
}

/// The name the schema's IAM lists use for a policy resource: a default table name,
/// `questions/index/top`, or `queue` for the aggregator's queue.
fn iam_resource_name(template: &Template, resource: &Value) -> String {
    if let Some((logical, _)) = get_att(resource) {
        if logical == "AggregatorQueue" {
            return schema::QUEUE_RESOURCE.to_owned();
        }
        if let Some(name) = template.resolve(&template.resource(&logical)["Properties"]["TableName"]) {
            return name;
        }
        panic!("cannot name the IAM resource {resource:?}");
    }
    if let Some(("Sub", Value::String(text))) = intrinsic(resource) {
        let arn = template.substitute(text);
        if let Some((_, table)) = arn.split_once(":table/") {
            return table.to_owned();
        }
        panic!("{text} is not a table ARN");
    }
    panic!("unexpected IAM resource {resource:?} (want !GetAtt or !Sub of a table ARN)");
}

/// The (action, resource name) pairs a role's statements allow, excluding its own logs.
fn allowed(template: &Template, function: &str) -> BTreeSet<(String, String)> {
    let (role, role_name) = function_role(template, function);
    let properties = &role["Properties"];
    assert!(properties["ManagedPolicyArns"].is_null(), "{role_name} attaches managed policies");
    assert_eq!(
        strings(&properties["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]),
        BTreeSet::from(["lambda.amazonaws.com".to_owned()]),
        "{role_name} is not a Lambda role"
    );
    let log_group = &template.resource(function)["Properties"]["LoggingConfig"]["LogGroup"];
    let log_group = match intrinsic(log_group) {
        Some(("Ref", name)) => scalar(name).unwrap_or_default(),
        _ => panic!("{function} logs to no log group of this stack"),
    };

    let mut granted = BTreeSet::new();
    for policy in as_list(&properties["Policies"]) {
        for statement in as_list(&policy["PolicyDocument"]["Statement"]) {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{role_name}");
            assert!(
                statement["NotAction"].is_null() && statement["NotResource"].is_null(),
                "{role_name} uses NotAction/NotResource"
            );
            let actions = strings(&statement["Action"]);
            let resources = as_list(&statement["Resource"]);
            assert!(!resources.is_empty(), "{role_name}: a statement without Resource");
            for action in &actions {
                assert!(!action.contains('*'), "{role_name} allows the wildcard action {action}");
            }
            for resource in &resources {
                assert_ne!(scalar(resource).as_deref(), Some("*"), "{role_name} allows every resource");
            }
            if actions.iter().all(|action| action.starts_with("logs:")) {
                assert_eq!(
                    actions,
                    BTreeSet::from(["logs:CreateLogStream".to_owned(), "logs:PutLogEvents".to_owned()]),
                    "{role_name} logs"
                );
                for resource in resources {
                    assert_eq!(
                        get_att(resource),
                        Some((log_group.clone(), "Arn".to_owned())),
                        "{role_name} may log elsewhere than its own group"
                    );
                }
                continue;
            }
            for action in &actions {
                for resource in &resources {
                    granted.insert((action.clone(), iam_resource_name(template, resource)));
                }
            }
        }
    }
    granted
}

#[test]
fn each_function_may_do_exactly_what_its_adapter_calls() {
    let template = Template::load();
    assert_eq!(allowed(&template, "IngestFunction"), pairs(schema::IAM_INGEST), "IngestRole vs schema::IAM_INGEST");
    assert_eq!(allowed(&template, "QueryFunction"), pairs(schema::IAM_QUERY), "QueryRole vs schema::IAM_QUERY");
    assert_eq!(
        allowed(&template, "AggregatorFunction"),
        pairs(schema::IAM_AGGREGATOR),
        "AggregatorRole vs schema::IAM_AGGREGATOR"
    );

    // The rules, checked on the constants themselves: query only reads, ingest
    // writes only new events and ledger records, the aggregator writes only the projection.
    let writes = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"];
    for (action, _) in schema::IAM_QUERY {
        assert!(!writes.contains(action), "query may {action}");
    }
    for (action, table) in schema::IAM_INGEST {
        if writes.contains(action) {
            assert!([schema::EVENTS_TABLE, schema::LEDGER_TABLE].contains(table), "ingest may {action} on {table}");
            assert!(
                *action != "dynamodb:DeleteItem" && *action != "dynamodb:UpdateItem",
                "ingest may {action}: records are immutable"
            );
        }
    }
    for (action, table) in schema::IAM_AGGREGATOR {
        if writes.contains(action) {
            assert!(
                [schema::QUESTIONS_TABLE, schema::VOTERS_TABLE].contains(table),
                "the aggregator may {action} on {table}"
            );
        }
    }
}

/// Records DynamoDB throttled go back, as new messages, to the queue the aggregator consumes
/// (design §5): its function names that queue in the variable the Lambda reads, and the
/// queue is its event source.
#[test]
fn the_aggregator_sends_throttled_records_back_to_the_queue_it_consumes() {
    let template = Template::load();
    let function = template.resource("AggregatorFunction");
    let url = &function["Properties"]["Environment"]["Variables"][aggregator_queue::queue::QUEUE_URL_ENV];
    assert!(
        matches!(intrinsic(url), Some(("Ref", Value::String(name))) if name == "AggregatorQueue"),
        "the aggregator's {} is not its queue: {url:?}",
        aggregator_queue::queue::QUEUE_URL_ENV
    );
    let source = &function["Properties"]["Events"]["Ledger"]["Properties"]["Queue"];
    assert_eq!(get_att(source), Some(("AggregatorQueue".to_owned(), "Arn".to_owned())), "the event source");
}

#[test]
fn the_functions_are_the_workspace_lambda_binaries() {
    let template = Template::load();
    let globals = &template.doc["Globals"]["Function"];
    assert_eq!(scalar(&globals["Runtime"]).as_deref(), Some("provided.al2023"));
    assert_eq!(strings(&globals["Architectures"]), BTreeSet::from(["arm64".to_owned()]));
    assert_eq!(scalar(&globals["Handler"]).as_deref(), Some("bootstrap"));
    // cargo-lambda runs at CodeUri and SAM copies CodeUri/target/lambda/<binary>/bootstrap,
    // so CodeUri is the workspace root.
    let code_uri = scalar(&globals["CodeUri"]).unwrap_or_default();
    let workspace = root().join("infra").join(&code_uri);
    assert_eq!(
        std::fs::canonicalize(&workspace).ok(),
        std::fs::canonicalize(root()).ok(),
        "CodeUri {code_uri} is not the workspace root"
    );

    let functions = template.resources_of_type("AWS::Serverless::Function");
    assert_eq!(functions.len(), 3, "three functions");
    let workspace_manifest = read_toml(Path::new("Cargo.toml"));
    let members = workspace_manifest["workspace"]["members"].as_array().cloned().unwrap_or_default();
    // sam build runs `cargo lambda build --bin <Binary>` at the root with this configuration.
    let build_config = read_toml(Path::new("infra/cargo-lambda.toml"));
    assert_eq!(
        build_config["build"]["workspace"].as_bool(),
        Some(true),
        "infra/cargo-lambda.toml must build from the whole workspace"
    );
    // No binary may need a feature the configuration leaves off (none needs one today).
    let enabled: BTreeSet<String> = build_config["build"]
        .get("features")
        .and_then(|features| features.as_array())
        .map(|features| features.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();

    for (name, package_dir) in [
        ("IngestFunction", "ingest/lambda"),
        ("QueryFunction", "query/lambda"),
        ("AggregatorFunction", "aggregator/lambda"),
    ] {
        let function = template.resource(name);
        assert_eq!(function["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
        let binary = scalar(&function["Metadata"]["BuildProperties"]["Binary"])
            .unwrap_or_else(|| panic!("{name} names no binary"));
        assert!(
            members.iter().any(|m| m.as_str() == Some(package_dir)),
            "{package_dir} is not a workspace member, so cargo lambda cannot build {binary}"
        );

        let manifest = read_toml(&Path::new(package_dir).join("Cargo.toml"));
        let package = manifest["package"]["name"].as_str().unwrap_or_default().to_owned();
        // The binary is the package's default one, or a [[bin]] of that name.
        let bins = manifest.get("bin").and_then(|b| b.as_array()).cloned().unwrap_or_default();
        let declared = bins.iter().find(|bin| bin["name"].as_str() == Some(binary.as_str()));
        assert!(declared.is_some() || package == binary, "{package_dir} does not build a binary named {binary}");
        // Features the binary requires must be switched on for sam build.
        let required = declared
            .and_then(|bin| bin.get("required-features"))
            .and_then(|f| f.as_array())
            .cloned()
            .unwrap_or_default();
        for feature in required.iter().filter_map(|f| f.as_str()) {
            let qualified = format!("{package}/{feature}");
            assert!(
                enabled.contains(&qualified),
                "{binary} requires {qualified}, which infra/cargo-lambda.toml does not enable"
            );
        }
    }
}

fn read_toml(relative: &Path) -> toml::Table {
    let path = root().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    text.parse().unwrap_or_else(|error| panic!("{} is not TOML: {error}", path.display()))
}

#[test]
fn timeouts_and_batches_agree_with_the_code() {
    let template = Template::load();
    let number = |value: &Value, what: &str| -> u64 {
        template.resolve(value).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{what} is not a number"))
    };

    // The roles answer 503 (no-store) after their own timeout; the Lambda must outlive it so
    // that answer gets out, and stay under API Gateway's 30 s integration limit.
    for (name, role_timeout_ms) in
        [("IngestFunction", ingest::REQUEST_TIMEOUT_MS), ("QueryFunction", query::REQUEST_TIMEOUT_MS)]
    {
        let timeout_s = number(&template.resource(name)["Properties"]["Timeout"], name);
        assert!(timeout_s * 1000 > role_timeout_ms, "{name} times out ({timeout_s} s) before its role answers 503");
        assert!(timeout_s < 30, "{name}'s timeout exceeds the HTTP API integration limit");
    }

    let aggregator = template.resource("AggregatorFunction");
    let events: Vec<&Value> = mapping(&aggregator["Properties"]["Events"]).values().collect();
    assert_eq!(events.len(), 1, "the aggregator has one trigger");
    let sqs = &events[0]["Properties"];
    assert_eq!(events[0]["Type"].as_str(), Some("SQS"));
    assert_eq!(get_att(&sqs["Queue"]), Some(("AggregatorQueue".to_owned(), "Arn".to_owned())));
    assert!(
        strings(&sqs["FunctionResponseTypes"]).contains("ReportBatchItemFailures"),
        "partial batch failures are not reported"
    );
    let batch_parameter =
        template.referenced_parameter(&sqs["BatchSize"]).unwrap_or_else(|| panic!("BatchSize is not a parameter"));
    let batch_max = number(&template.doc["Parameters"][batch_parameter]["MaxValue"], "BatchSize's MaxValue");
    assert_eq!(batch_max, ledger::limits::BATCH_RECORDS_MAX as u64, "the aggregator's batch limit");
    assert!(
        number(&sqs["MaximumBatchingWindowInSeconds"], "the batching window") >= 1,
        "batches over 10 need a window"
    );
    assert!(number(&sqs["ScalingConfig"]["MaximumConcurrency"], "MaximumConcurrency") >= 2);

    // A message must stay invisible while an invocation may still be working on it.
    let aggregator_timeout_s = number(&aggregator["Properties"]["Timeout"], "the aggregator's timeout");
    let queue = &template.resource("AggregatorQueue")["Properties"];
    assert!(
        number(&queue["VisibilityTimeout"], "VisibilityTimeout") >= 6 * aggregator_timeout_s,
        "visibility timeout under 6x the aggregator timeout"
    );
    assert_eq!(
        get_att(&queue["RedrivePolicy"]["deadLetterTargetArn"]),
        Some(("AggregatorDeadLetterQueue".to_owned(), "Arn".to_owned()))
    );
    assert!(number(&queue["RedrivePolicy"]["maxReceiveCount"], "maxReceiveCount") >= 2);

    // The Pipe carries the ledger stream to that queue, with its own dead-letter queue.
    let pipe = &template.resource("LedgerPipe")["Properties"];
    assert_eq!(get_att(&pipe["Target"]), Some(("AggregatorQueue".to_owned(), "Arn".to_owned())));
    let stream = &pipe["SourceParameters"]["DynamoDBStreamParameters"];
    assert_eq!(get_att(&stream["DeadLetterConfig"]["Arn"]), Some(("PipeDeadLetterQueue".to_owned(), "Arn".to_owned())));
    // EventBridge Pipes refuses a source batch larger than its target takes; SQS takes 10.
    const PIPE_SQS_TARGET_BATCH_MAX: u64 = 10;
    let pipe_batch = number(&stream["BatchSize"], "the Pipe's BatchSize");
    assert!(
        (1..=PIPE_SQS_TARGET_BATCH_MAX).contains(&pipe_batch),
        "the Pipe's batch size {pipe_batch} exceeds what SQS takes"
    );
    assert_eq!(scalar(&stream["StartingPosition"]).as_deref(), Some("TRIM_HORIZON"), "the Pipe could skip records");
    match intrinsic(&pipe["Source"]) {
        Some(("If", Value::Sequence(branches))) => {
            assert_eq!(get_att(&branches[1]), Some(("LedgerTable".to_owned(), "StreamArn".to_owned())))
        }
        other => panic!("the Pipe's source is {other:?}"),
    }
}

/// The CloudFront behaviour serving `path_pattern` (`None`: the default behaviour).
fn behaviour<'t>(template: &'t Template, path_pattern: Option<&str>) -> &'t Value {
    let config = &template.resource("Distribution")["Properties"]["DistributionConfig"];
    match path_pattern {
        None => &config["DefaultCacheBehavior"],
        Some(pattern) => as_list(&config["CacheBehaviors"])
            .into_iter()
            .find(|b| b["PathPattern"].as_str() == Some(pattern))
            .unwrap_or_else(|| panic!("no CloudFront behaviour for {pattern}")),
    }
}

/// A response headers policy's security headers, by its logical name.
fn security_headers<'t>(template: &'t Template, policy: &str) -> &'t Value {
    let resource = template.resource(policy);
    assert_eq!(resource["Type"].as_str(), Some("AWS::CloudFront::ResponseHeadersPolicy"), "{policy}");
    &resource["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
}

fn references(value: &Value, resource: &str) -> bool {
    matches!(intrinsic(value), Some(("Ref", Value::String(name))) if name == resource)
}

#[test]
fn cloudfront_sends_the_protective_headers_serve_sends() {
    use wewerewondering::site;
    let template = Template::load();
    // The client's entry page as Vite copies it into the build (its inline scripts verbatim).
    let index = std::fs::read_to_string(root().join("client/index.html")).expect("client/index.html");
    let csp = site::content_security_policy(&site::inline_script_hashes(&index), &[]);
    let hsts_seconds: u64 =
        site::HSTS.strip_prefix("max-age=").and_then(|s| s.parse().ok()).expect("HSTS is max-age=N");

    let pages = security_headers(&template, "SiteHeadersPolicy");
    assert_eq!(
        pages["ContentSecurityPolicy"]["ContentSecurityPolicy"].as_str(),
        Some(csp.as_str()),
        "the pages' CSP must be serve's for client/index.html (its inline script's hash changed?)"
    );
    assert_eq!(pages["ReferrerPolicy"]["ReferrerPolicy"].as_str(), Some("no-referrer"));
    assert_eq!(pages["FrameOptions"]["FrameOption"].as_str(), Some("DENY"));
    let api = security_headers(&template, "ApiHeadersPolicy");
    assert_eq!(api["ContentSecurityPolicy"]["ContentSecurityPolicy"].as_str(), Some(site::API_CSP));
    for (name, policy) in [("site", pages), ("api", api)] {
        assert_eq!(policy["ContentTypeOptions"]["Override"].as_bool(), Some(true), "{name}: nosniff");
        assert_eq!(
            policy["StrictTransportSecurity"]["AccessControlMaxAgeSec"].as_u64(),
            Some(hsts_seconds),
            "{name}: HSTS"
        );
        assert_eq!(
            policy["StrictTransportSecurity"]["IncludeSubdomains"].as_bool(),
            Some(false),
            "{name}: HSTS for this host only"
        );
        for header in ["ContentSecurityPolicy", "ContentTypeOptions", "StrictTransportSecurity"] {
            assert_eq!(policy[header]["Override"].as_bool(), Some(true), "{name}: {header} overrides the origin's");
        }
    }
    assert!(
        references(&behaviour(&template, None)["ResponseHeadersPolicyId"], "SiteHeadersPolicy"),
        "pages and assets"
    );
    assert!(
        references(&behaviour(&template, Some("/api/*"))["ResponseHeadersPolicyId"], "ApiHeadersPolicy"),
        "the API"
    );
}

#[test]
fn a_waf_rule_limits_writes_per_client_address_by_default() {
    let template = Template::load();
    let acl = template.resource("WebAcl");
    assert_eq!(acl["Type"].as_str(), Some("AWS::WAFv2::WebACL"));
    assert_eq!(acl["Properties"]["Scope"].as_str(), Some("CLOUDFRONT"));
    let rules = as_list(&acl["Properties"]["Rules"]);
    let rule = rules.iter().find(|r| r["Statement"]["RateBasedStatement"].is_mapping()).expect("a rate-based rule");
    let rate = &rule["Statement"]["RateBasedStatement"];
    assert_eq!(rate["AggregateKeyType"].as_str(), Some("IP"), "counted per client address");
    let window = rate["EvaluationWindowSec"].as_u64().expect("a window");
    let limit: u64 = template.resolve(&rate["Limit"]).and_then(|l| l.parse().ok()).expect("a limit");
    assert_eq!(template.referenced_parameter(&rate["Limit"]), Some("WafWriteRateLimit"));
    assert!(limit > 0, "on by default");
    // Never stricter for a venue than serve's own default vote limit over the same window.
    let vote = ingest::RateLimits::default().vote.expect("a default vote limit");
    let serve_votes_per_window = u64::from(vote.count.get()) * window / vote.per.as_secs().max(1);
    assert!(limit >= serve_votes_per_window, "WAF {limit}/{window}s is stricter than serve's {serve_votes_per_window}");
    let scope = &rate["ScopeDownStatement"]["ByteMatchStatement"];
    assert!(scope["FieldToMatch"]["Method"].is_mapping(), "only writes count");
    assert_eq!(scope["SearchString"].as_str(), Some("POST"));
    assert_eq!(scope["PositionalConstraint"].as_str(), Some("EXACTLY"));
    let response = &rule["Action"]["Block"]["CustomResponse"];
    assert_eq!(response["ResponseCode"].as_u64(), Some(429));
    let headers: BTreeSet<String> = as_list(&response["ResponseHeaders"])
        .into_iter()
        .filter_map(|h| h["Name"].as_str().map(str::to_ascii_lowercase))
        .collect();
    assert!(headers.contains("retry-after"), "{headers:?}");
    let body_key = response["CustomResponseBodyKey"].as_str().expect("a body");
    let body = &acl["Properties"]["CustomResponseBodies"][body_key];
    assert_eq!(body["ContentType"].as_str(), Some("APPLICATION_JSON"));
    let json: serde_json::Value = serde_json::from_str(body["Content"].as_str().expect("text")).expect("JSON");
    assert!(json["error"].is_string(), "refused like the API refuses: {json}");

    // Attached to the distribution: the given ACL, else the one this stack creates.
    let attached = &template.resource("Distribution")["Properties"]["DistributionConfig"]["WebACLId"];
    let Some(("If", branches)) = intrinsic(attached) else { panic!("WebACLId: {attached:?}") };
    let branches = as_list(branches);
    assert_eq!(branches[0].as_str(), Some("HasWebAclArn"));
    assert_eq!(template.referenced_parameter(branches[1]), Some("WebAclArn"));
    let Some(("If", created)) = intrinsic(branches[2]) else { panic!("WebACLId: {attached:?}") };
    let created = as_list(created);
    assert_eq!(created[0].as_str(), Some("CreatesWebAcl"));
    assert_eq!(get_att(created[1]), Some(("WebAcl".to_owned(), "Arn".to_owned())));
    assert_eq!(acl["Condition"].as_str(), Some("CreatesWebAcl"));
}

#[test]
fn cloudfront_never_caches_a_server_error() {
    let template = Template::load();
    let config = &template.resource("Distribution")["Properties"]["DistributionConfig"];
    let mut uncached = BTreeSet::new();
    for response in as_list(&config["CustomErrorResponses"]) {
        let code: u64 = template
            .resolve(&response["ErrorCode"])
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("an error response without a code: {response:?}"));
        // The origin's own error passes through (the API's JSON body, its status): no page,
        // no rewritten status.
        assert!(
            response["ResponsePagePath"].is_null() && response["ResponseCode"].is_null(),
            "{code} is replaced by another response"
        );
        // 403/404 are served as the origins answer them: the SPA's routes are rewritten by a
        // CloudFront Function, and a custom 404 would also rewrite the API's 404s.
        assert!(
            code >= 500,
            "a custom error response for {code} changes how the client's routes and the API's refusals are served"
        );
        if template.resolve(&response["ErrorCachingMinTTL"]).as_deref() == Some("0") {
            uncached.insert(code);
        }
    }
    // CloudFront's default keeps a 5xx for 10 s despite no-store.
    for code in [500, 502, 503, 504] {
        assert!(uncached.contains(&code), "CloudFront caches {code} (no ErrorCachingMinTTL: 0)");
    }
}

#[test]
fn the_pipe_reads_shards_in_parallel_and_forwards_only_new_records() {
    let template = Template::load();
    let source = &template.resource("LedgerPipe")["Properties"]["SourceParameters"];
    // The fold does not depend on order, so a shard need not be read one batch at a time;
    // 10 is the most EventBridge Pipes allows.
    let parallel: u64 = template
        .resolve(&source["DynamoDBStreamParameters"]["ParallelizationFactor"])
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    assert!(
        (2..=10).contains(&parallel),
        "the Pipe reads each shard with ParallelizationFactor {parallel} (2..=10 wanted)"
    );

    // Ledger records are only ever inserted; TTL expiry's REMOVEs carry nothing to fold.
    let filters = as_list(&source["FilterCriteria"]["Filters"]);
    assert_eq!(filters.len(), 1, "one filter: inserts only");
    let pattern = scalar(&filters[0]["Pattern"]).unwrap_or_else(|| panic!("the Pipe's filter has no pattern"));
    let pattern: serde_json::Value =
        serde_json::from_str(&pattern).unwrap_or_else(|error| panic!("the Pipe's filter pattern is not JSON: {error}"));
    assert_eq!(pattern, serde_json::json!({"eventName": ["INSERT"]}), "the Pipe forwards more than inserts");
}

#[test]
fn the_aggregator_reserves_its_concurrency_and_ingest_and_query_are_capped() {
    let template = Template::load();
    let number = |value: &Value, what: &str| -> u64 {
        template.resolve(value).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{what} is not a number"))
    };

    // An ingest spike must not throttle the fold: the aggregator's concurrency is reserved,
    // unconditionally, and at least what its event source mapping may use (AWS's advice).
    let aggregator = &template.resource("AggregatorFunction")["Properties"];
    let reserved_value = &aggregator["ReservedConcurrentExecutions"];
    assert!(
        !reserved_value.is_null() && intrinsic(reserved_value).is_none_or(|(function, _)| function == "Ref"),
        "the aggregator's concurrency is not always reserved: {reserved_value:?}"
    );
    let reserved = number(reserved_value, "the aggregator's ReservedConcurrentExecutions");
    let mapping_events: Vec<&Value> = mapping(&aggregator["Events"]).values().collect();
    let maximum = number(&mapping_events[0]["Properties"]["ScalingConfig"]["MaximumConcurrency"], "MaximumConcurrency");
    assert!(reserved >= maximum, "the aggregator reserves {reserved}, under its MaximumConcurrency {maximum}");
    if let Some(parameter) = template.referenced_parameter(reserved_value) {
        // 0 would disable the function; the parameter cannot be set to it.
        let minimum = number(&template.doc["Parameters"][parameter]["MinValue"], "the reservation's MinValue");
        assert!(minimum >= 1, "{parameter} may be {minimum}");
    }

    // Ingest and query: caps as parameters, on by default; 0 means unreserved, not disabled.
    let mut total = reserved;
    for (name, parameter) in
        [("IngestFunction", "IngestReservedConcurrency"), ("QueryFunction", "QueryReservedConcurrency")]
    {
        let value = &template.resource(name)["Properties"]["ReservedConcurrentExecutions"];
        let Some(("If", Value::Sequence(branches))) = intrinsic(value) else {
            panic!("{name}'s ReservedConcurrentExecutions: {value:?}")
        };
        assert_eq!(template.referenced_parameter(&branches[1]), Some(parameter), "{name} is capped by {parameter}");
        assert!(
            matches!(intrinsic(&branches[2]), Some(("Ref", v)) if v.as_str() == Some("AWS::NoValue")),
            "{name}: 0 must leave it unreserved"
        );
        // The condition is `!Not [!Equals [!Ref {parameter}, 0]]`.
        let condition = &template.doc["Conditions"][branches[0].as_str().unwrap_or_default()];
        let compared = match intrinsic(condition) {
            Some(("Not", negated)) => match as_list(negated).first().and_then(|inner| intrinsic(inner)) {
                Some(("Equals", compared)) => as_list(compared),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        assert!(
            compared.len() == 2
                && template.referenced_parameter(compared[0]) == Some(parameter)
                && scalar(compared[1]).as_deref() == Some("0"),
            "{name}'s condition is not `!Not [!Equals [!Ref {parameter}, 0]]`: {condition:?}"
        );
        let cap = number(&branches[1], parameter);
        assert!(cap > 0, "{parameter} is off by default");
        total += cap;
    }
    // Lambda keeps 100 of an account's concurrency unreserved; the default quota is 1,000.
    assert!(total <= 900, "the default reservations ({total}) do not fit a default account");
}

/// The CloudFront distribution's API origin.
fn api_origin(template: &Template) -> &Value {
    let config = &template.resource("Distribution")["Properties"]["DistributionConfig"];
    as_list(&config["Origins"])
        .into_iter()
        .find(|origin| origin["Id"].as_str() == Some("api"))
        .unwrap_or_else(|| panic!("the distribution has no api origin"))
}

#[test]
fn the_http_functions_require_the_origin_secret_cloudfront_sends() {
    let template = Template::load();
    // CloudFront adds the header the Lambda hosts check, with the secret parameter's value.
    let headers = as_list(&api_origin(&template)["OriginCustomHeaders"]);
    let header = headers
        .iter()
        .find(|h| {
            h["HeaderName"].as_str().map(str::to_ascii_lowercase).as_deref() == Some(http_edge::ORIGIN_VERIFY_HEADER)
        })
        .unwrap_or_else(|| panic!("CloudFront does not send {}", http_edge::ORIGIN_VERIFY_HEADER));
    let secret = template.referenced_parameter(&header["HeaderValue"]).expect("the header's value is a parameter");
    let parameter = &template.doc["Parameters"][secret];
    assert_eq!(parameter["NoEcho"].as_bool(), Some(true), "{secret} is shown in the console");
    assert!(parameter["Default"].is_null(), "{secret} has a default anyone can read");
    let min_length: usize = scalar(&parameter["MinLength"]).and_then(|m| m.parse().ok()).expect("a MinLength");
    assert!(min_length >= http_edge::ORIGIN_VERIFY_MIN_LEN, "{secret} may be shorter than the hosts accept");
    // The hosts split the accepted values on commas: the pattern's characters exclude it.
    let pattern = scalar(&parameter["AllowedPattern"]).expect("an AllowedPattern");
    let class = pattern
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(class, _)| class)
        .unwrap_or_else(|| panic!("{secret}'s pattern is not one character class: {pattern}"));
    assert!(!class.contains(',') && !class.starts_with('^'), "{secret} may contain the separator: {pattern}");

    // Both HTTP functions read the accepted values from the variable the hosts read; during a
    // rotation, the previous value too. The aggregator answers no HTTP and gets none.
    for name in ["IngestFunction", "QueryFunction"] {
        let value = &template.resource(name)["Properties"]["Environment"]["Variables"][http_edge::ORIGIN_VERIFY_ENV];
        let Some(("If", Value::Sequence(branches))) = intrinsic(value) else {
            panic!("{name} has no {} from the secret: {value:?}", http_edge::ORIGIN_VERIFY_ENV)
        };
        assert_eq!(template.referenced_parameter(&branches[2]), Some(secret), "{name} accepts another value");
        let Some(("Join", Value::Sequence(join))) = intrinsic(&branches[1]) else {
            panic!("{name}: the rotation branch is not a join: {:?}", branches[1])
        };
        assert_eq!(join[0].as_str(), Some(","), "{name}: the hosts split on commas");
        let joined: Vec<_> = as_list(&join[1]).into_iter().map(|v| template.referenced_parameter(v)).collect();
        assert_eq!(joined, vec![Some(secret), Some("OriginVerifySecretPrevious")], "{name}: the rotation's two values");
    }
    let aggregator = &template.resource("AggregatorFunction")["Properties"]["Environment"]["Variables"];
    assert!(aggregator[http_edge::ORIGIN_VERIFY_ENV].is_null(), "the aggregator gets the origin secret");
}

#[test]
fn one_hostname_serves_every_region_and_the_voter_cookie_is_host_only() {
    let template = Template::load();
    // One distribution, in the home stack only: CloudFront refuses an alias attached twice.
    let distribution = template.resource("Distribution");
    assert_eq!(distribution["Condition"].as_str(), Some("IsPrimaryRegion"), "every region would create one");
    // The same stack as the global tables: the home region's.
    for table in ["EventsTable", "LedgerTable"] {
        assert_eq!(template.resource(table)["Condition"].as_str(), Some("IsPrimaryRegion"), "{table}");
    }
    // Its API origin is the shared name every region's stack gives its API.
    let Some(("If", Value::Sequence(branches))) = intrinsic(&api_origin(&template)["DomainName"]) else {
        panic!("the api origin is not the shared API name")
    };
    assert_eq!(branches[0].as_str(), Some("HasApiDomain"));
    assert_eq!(template.referenced_parameter(&branches[1]), Some("ApiDomainName"));
    let domain = &template.resource("ApiDomain")["Properties"];
    assert!(references(&domain["DomainName"], "ApiDomainName"));
    let record = &template.resource("ApiLatencyRecord")["Properties"];
    assert!(references(&record["Name"], "ApiDomainName"));
    assert!(references(&record["Region"], "AWS::Region"), "latency-routed per region");
    assert!(references(&record["HealthCheckId"], "RegionHealthCheck"), "health-checked");

    // The voter cookie names no Domain, so it belongs to the one site hostname whichever
    // region's API answers behind it; it names Path=/ so every API route receives it.
    let cookie = ingest::voter::voter_cookie(ledger::VoterId::random(), 60, true);
    let cookie = cookie.to_str().expect("a text cookie").to_ascii_lowercase();
    assert!(!cookie.contains("domain="), "the voter cookie is bound to a domain: {cookie}");
    assert!(cookie.contains("path=/"), "{cookie}");
}

#[test]
fn every_ledger_write_in_the_adapter_is_a_conditional_put() {
    // IAM cannot require a condition expression (DynamoDB's condition keys cover attributes,
    // leading keys, return values and Select, not ConditionExpression), so ingest's
    // `dynamodb:PutItem` on the ledger is as safe as the code that issues it: every write to
    // the ledger table in the adapter must be a PutItem that only creates.
    let dir = root().join("ledger/dynamodb/src");
    let mut puts = 0;
    for entry in std::fs::read_dir(&dir).expect("the adapter's sources") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a source file");
        for call in
            [".put_item()", ".update_item()", ".delete_item()", ".batch_write_item()", ".transact_write_items()"]
        {
            for (at, _) in source.match_indices(call) {
                // The builder chain up to its send.
                let chain = &source[at..];
                let chain = &chain[..chain.find(".send()").unwrap_or(chain.len())];
                if !chain.contains("tables.ledger") {
                    continue;
                }
                let file = path.display();
                assert_eq!(call, ".put_item()", "{file}: {call} on the ledger (records are immutable)");
                assert!(
                    chain.contains(".condition_expression(\"attribute_not_exists("),
                    "{file}: a ledger PutItem without attribute_not_exists could overwrite a record"
                );
                puts += 1;
            }
        }
    }
    assert!(puts >= 1, "found no ledger append in the adapter; has it moved?");
    // Batches cannot be conditional: the role must not allow one anywhere.
    for (action, _) in schema::IAM_INGEST {
        assert_ne!(*action, "dynamodb:BatchWriteItem", "ingest may write unconditionally in batches");
    }
}

#[test]
fn the_pipe_may_only_read_the_ledger_stream_and_send_to_its_queues() {
    let template = Template::load();
    let role = template.resource("PipeRole");
    assert!(role["Properties"]["ManagedPolicyArns"].is_null(), "the Pipe's role attaches managed policies");
    let mut granted = BTreeSet::new();
    for policy in as_list(&role["Properties"]["Policies"]) {
        for statement in as_list(&policy["PolicyDocument"]["Statement"]) {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            for action in strings(&statement["Action"]) {
                for resource in as_list(&statement["Resource"]) {
                    let target = match (get_att(resource), intrinsic(resource)) {
                        (Some((logical, attribute)), _) => format!("{logical}.{attribute}"),
                        // The home stack's own stream, or the replica's named by a parameter.
                        (None, Some(("If", _))) => "ledger stream".to_owned(),
                        _ => panic!("unexpected resource {resource:?}"),
                    };
                    granted.insert((action.clone(), target));
                }
            }
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("dynamodb:DescribeStream", "ledger stream"),
        ("dynamodb:GetRecords", "ledger stream"),
        ("dynamodb:GetShardIterator", "ledger stream"),
        ("dynamodb:ListStreams", "ledger stream"),
        ("sqs:SendMessage", "AggregatorQueue.Arn"),
        ("sqs:SendMessage", "PipeDeadLetterQueue.Arn"),
    ]
    .iter()
    .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
    .collect();
    assert_eq!(granted, expected, "PipeRole");
}

#[test]
fn the_lambda_binaries_are_stripped_and_still_unwind() {
    let manifest = read_toml(Path::new("Cargo.toml"));
    let profiles = &manifest["profile"];
    let lambda = profiles.get("lambda").and_then(|p| p.as_table()).expect("Cargo.toml has [profile.lambda]");
    assert_eq!(lambda.get("inherits").and_then(|v| v.as_str()), Some("release"));
    assert!(
        matches!(lambda.get("strip"), Some(toml::Value::Boolean(true)))
            || lambda.get("strip").and_then(|v| v.as_str()) == Some("symbols"),
        "the lambda profile keeps symbols"
    );
    assert!(
        matches!(lambda.get("debug"), Some(toml::Value::Boolean(false)))
            || lambda.get("debug").and_then(|v| v.as_str()) == Some("none"),
        "the lambda profile keeps debug info"
    );
    assert_eq!(lambda.get("codegen-units").and_then(|v| v.as_integer()), Some(1));
    assert!(lambda
        .get("lto")
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str().is_some_and(|s| s == "fat" || s == "thin")));
    // A handler's panic costs one request a 500 (the edge catches it); `abort` would end the
    // process and every request in flight. cargo-lambda's --release injects `abort` into a
    // release profile that names no strategy, so release names it too.
    let release_panic = profiles["release"].get("panic").and_then(|v| v.as_str());
    assert_eq!(release_panic, Some("unwind"), "[profile.release] must name panic = \"unwind\"");
    assert_eq!(lambda.get("panic").and_then(|v| v.as_str()).or(release_panic), Some("unwind"));
    let build = read_toml(Path::new("infra/cargo-lambda.toml"));
    assert_eq!(
        build["build"].get("profile").and_then(|v| v.as_str()),
        Some("lambda"),
        "sam build uses another profile"
    );
}

#[test]
fn every_dynamodb_action_granted_is_one_the_adapter_calls() {
    // The roles' lists (`schema::IAM_*`) are what the template grants; a list entry no code
    // calls any more would be a permission kept for nothing. Each granted DynamoDB action
    // must be an SDK call somewhere in the adapter's sources (the SQS actions are the event
    // source mapping's, not the code's).
    let dir = root().join("ledger/dynamodb/src");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&dir).expect("the adapter's sources") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("rs") {
            sources.push_str(&std::fs::read_to_string(&path).expect("a source file"));
        }
    }
    for (action, resource) in schema::IAM_INGEST.iter().chain(schema::IAM_QUERY).chain(schema::IAM_AGGREGATOR) {
        let Some(operation) = action.strip_prefix("dynamodb:") else { continue };
        // PutItem -> put_item: the SDK's fluent builder method.
        let mut method = String::new();
        for (i, c) in operation.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                method.push('_');
            }
            method.push(c.to_ascii_lowercase());
        }
        assert!(
            sources.contains(&format!(".{method}()")),
            "{action} on {resource} is granted but the adapter never calls .{method}()"
        );
    }
}
