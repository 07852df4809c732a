"""Runs the SAM transform on template.yaml offline, as CloudFormation will on deploy.

`sam validate --lint` checks the template's shape; the transform is where a property SAM
takes but cannot expand (a condition inside an API's Domain) fails. The functions' CodeUri
is a local path that `sam build` replaces; here it stands in as an S3 URI.

    .venv/bin/python scripts/sam-translate.py [out.json]
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
with open("template.yaml", encoding="utf-8") as f:
    template = yaml_parse(f.read())
template["Globals"]["Function"]["CodeUri"] = "s3://built-by-sam/bootstrap.zip"
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"].pop("CodeUri", None)


class NoManagedPolicies:
    def load(self):
        return {}


translated = transform(template, {}, NoManagedPolicies())
kinds = sorted({r["Type"] for r in translated["Resources"].values()})
print(f"SAM transform: {len(translated['Resources'])} resources ({len(kinds)} types)")
if len(sys.argv) > 1:
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(translated, f, indent=1)
