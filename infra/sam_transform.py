"""Applies the SAM transform to infra/template.yaml offline and writes plain CloudFormation.

cfn-lint and checkov see SAM resources (AWS::Serverless::*) only as SAM declares them;
the transform shows what CloudFormation will actually be asked to create (the Lambda
functions, their permissions, the HTTP API's routes, stage and integrations, the event
source mapping), so those get linted too. No AWS account or network is needed: the pseudo
parameters are fixed fake values and no managed policy is looked up (the template names
none; every role is written out in full).

Usage: python infra/sam_transform.py TEMPLATE OUTPUT.json
"""

import json
import os
import sys

FAKE_REGION = "us-east-1"
FAKE_ACCOUNT = "123456789012"


class NoManagedPolicies:
    """The template attaches no managed policy by name, so there is nothing to resolve."""

    def load(self):
        return {}


def package_code_uris(template, template_dir):
    """Does what `sam package` does to local code: checks that each function's CodeUri is a
    Cargo project and stands in an S3 URI for it (the translator accepts nothing else)."""
    problems = []
    globals_function = template.get("Globals", {}).get("Function", {})
    default_uri = globals_function.get("CodeUri")
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        uri = properties.get("CodeUri", default_uri)
        if not isinstance(uri, str) or uri.startswith("s3://"):
            continue
        if not os.path.isfile(os.path.join(template_dir, uri, "Cargo.toml")):
            problems.append(f"{name}: CodeUri {uri!r} is not a Cargo project (no Cargo.toml)")
        properties["CodeUri"] = f"s3://packaged-code/{name}.zip"
    if isinstance(default_uri, str) and not default_uri.startswith("s3://"):
        del globals_function["CodeUri"]
    return problems


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    source, output = argv[1], argv[2]

    # samtranslator asks boto3 for a region to choose the partition; never for credentials.
    os.environ.setdefault("AWS_DEFAULT_REGION", FAKE_REGION)

    from cfnlint.decode import decode
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    template, problems = decode(source)
    if problems or template is None:
        for problem in problems or []:
            print(f"{source}: {problem}", file=sys.stderr)
        return 1

    problems = package_code_uris(template, os.path.dirname(os.path.abspath(source)))
    if problems:
        for problem in problems:
            print(f"{source}: {problem}", file=sys.stderr)
        return 1

    parameters = {
        "AWS::Region": FAKE_REGION,
        "AWS::AccountId": FAKE_ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::StackName": "wewerewondering",
        "AWS::URLSuffix": "amazonaws.com",
    }
    try:
        transformed = transform(template, parameters, NoManagedPolicies())
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"{source}: {cause.message}", file=sys.stderr)
        return 1

    with open(output, "w", encoding="utf-8") as out:
        json.dump(transformed, out, indent=2, sort_keys=True)
        out.write("\n")
    print(f"{source}: SAM transform ok, {len(transformed.get('Resources', {}))} resources -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
