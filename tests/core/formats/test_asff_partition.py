"""ASFF's `partition` option: an AWS partition or a usage error, and by default the Region's own partition
(a cn-north-1 finding's ARNs are arn:aws-cn:..., which Security Hub in China requires)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

botocore = pytest.importorskip("botocore", reason="botocore is in the test extra")

from wia_security import AlertBuilder, ConversionError, convert  # noqa: E402
from wia_security.formats import asff  # noqa: E402

ACCOUNT = "111111111111"
BOTOCORE_PARTITIONS = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())["partitions"]


def _bare() -> dict:
    return AlertBuilder().title("x").build().to_dict()


def test_the_partitions_are_those_botocore_knows_with_their_regions():
    """The list is data from AWS's own SDK: a partition added there should be added here."""
    assert set(asff.PARTITIONS) == {p["id"] for p in BOTOCORE_PARTITIONS}
    for p in BOTOCORE_PARTITIONS:
        # aws-global, aws-cn-global, ...: endpoint names, not Regions (the partition's regionRegex leaves them out)
        regions = [r for r in p.get("regions", {}) if re.match(p["regionRegex"], r)]
        assert regions, p["id"]
        for region in regions:
            assert asff.REGION.fullmatch(region), region
            assert asff.partition_of(region) == p["id"], region


@pytest.mark.parametrize("value", ["aws-cm", "AWS", "amazon", "", "aws-iso-z"])
def test_a_partition_that_is_not_an_aws_partition_is_refused(value):
    problem = asff.AsffFormat().option_problem("partition", value)
    assert problem == ("must be an AWS partition: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, "
                       f"aws-iso-f, aws-eusc (got {value!r})")
    with pytest.raises(ConversionError, match=f"option partition must be an AWS partition.*{value!r}"):
        convert(_bare(), to="asff", account_id=ACCOUNT, partition=value)


def test_a_product_arn_outside_every_partition_is_refused():
    problem = asff.AsffFormat().option_problem(
        "product_arn", f"arn:awz:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default")
    assert problem is not None and problem.startswith("must name an AWS partition") and "'awz'" in problem


@pytest.mark.parametrize("region, partition", [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
                                               ("us-isob-east-1", "aws-iso-b"), ("eusc-de-east-1", "aws-eusc"),
                                               ("eu-west-1", "aws")])
def test_the_default_partition_is_the_regions(region, partition):
    finding = convert(_bare(), to="asff", account_id=ACCOUNT, region=region)
    assert finding["ProductArn"] == f"arn:{partition}:securityhub:{region}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert {r["Partition"] for r in finding["Resources"]} == {partition}


def test_a_partition_that_does_not_hold_the_region_is_refused():
    with pytest.raises(ConversionError, match="partition aws-cn does not hold Region us-east-1 "
                                              r"\(its partition is aws; the default Region: .*\): give a Region of aws-cn"):
        convert(_bare(), to="asff", account_id=ACCOUNT, partition="aws-cn")      # default Region us-east-1
    finding = convert(_bare(), to="asff", account_id=ACCOUNT, partition="aws-cn", region="cn-northwest-1")
    assert finding["ProductArn"].startswith("arn:aws-cn:securityhub:cn-northwest-1:")


def _convert(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(_bare()) + "\n")
    flags = [x for o in ("account_id=" + ACCOUNT, *options) for x in ("--option", o)]
    return subprocess.run([sys.executable, "-m", "wia_security", "convert", str(src), "--to", "asff", *flags,
                           "-o", str(tmp_path / "out.ndjson"), "--dead-letter", str(tmp_path / "dead.ndjson")],
                          capture_output=True, text=True, timeout=60)


def test_convert_refuses_a_bad_partition_before_any_event(tmp_path):
    r = _convert(tmp_path, "partition=aws-cm")
    assert r.returncode == 2
    assert r.stderr == ("wia-security: convert: --option partition: must be an AWS partition: aws, aws-cn, aws-us-gov, "
                        "aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc (got 'aws-cm')\n")
    assert not (tmp_path / "dead.ndjson").exists()


def test_convert_refuses_a_partition_and_region_that_do_not_go_together_before_any_event(tmp_path):
    r = _convert(tmp_path, "partition=aws-cn", "region=us-east-1")
    assert r.returncode == 2
    assert "wia-security: convert: --option: partition aws-cn does not hold Region us-east-1" in r.stderr
    assert not (tmp_path / "dead.ndjson").exists()
    r = _convert(tmp_path, "partition=aws-us-gov", "region=us-gov-east-1")
    assert r.returncode == 0, r.stderr


CN_PRODUCT = f"arn:aws-cn:securityhub:cn-north-1:{ACCOUNT}:product/{ACCOUNT}/default"


def test_a_product_arn_alone_places_the_finding_in_its_partition_and_region():
    """The product ARN says where findings are imported: an event that names no Region is placed there, not in
    us-east-1 of partition aws (a China product ARN with arn:aws: resources, which Security Hub refuses)."""
    finding = convert(_bare(), to="asff", account_id=ACCOUNT, product_arn=CN_PRODUCT)
    assert finding["ProductArn"] == CN_PRODUCT
    assert {(r["Partition"], r["Region"]) for r in finding["Resources"]} == {("aws-cn", "cn-north-1")}
    gov = f"arn:aws-us-gov:securityhub:us-gov-west-1:{ACCOUNT}:product/{ACCOUNT}/default"
    finding = convert(_bare(), to="asff", account_id=ACCOUNT, product_arn=gov, region="us-gov-east-1")
    assert {(r["Partition"], r["Region"]) for r in finding["Resources"]} == {("aws-us-gov", "us-gov-east-1")}


def test_a_product_arn_of_another_partition_than_the_region_or_the_partition_option_is_refused():
    aws = f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default"
    with pytest.raises(ConversionError, match=r"option product_arn is in partition aws, which does not hold Region "
                                              r"cn-north-1 \(its partition is aws-cn\): give a Region of aws"):
        convert(_bare(), to="asff", account_id=ACCOUNT, product_arn=aws, region="cn-north-1")
    aws_event = AlertBuilder().title("x").build().to_dict()
    aws_event["context"] = {"cloud": {"provider": "aws", "account_id": ACCOUNT, "region": "cn-northwest-1"}}
    with pytest.raises(ConversionError, match=r"Region cn-northwest-1 \(its partition is aws-cn; the event's "
                                              r"context.cloud.region\)"):
        convert(aws_event, to="asff", product_arn=aws)
    with pytest.raises(ConversionError, match=r"partition aws is not the partition of option product_arn \(aws-cn\)"):
        convert(_bare(), to="asff", account_id=ACCOUNT, product_arn=CN_PRODUCT, partition="aws")


def test_a_partition_without_a_region_says_the_region_was_the_default():
    with pytest.raises(ConversionError, match=r"its partition is aws; the default Region: neither option region "
                                              r"nor the event's context.cloud.region names one\): give a Region of "
                                              r"aws-us-gov \(region=\.\.\.\)"):
        convert(_bare(), to="asff", account_id=ACCOUNT, partition="aws-us-gov")


def test_convert_refuses_a_product_arn_that_does_not_go_with_the_other_options_before_any_event(tmp_path):
    r = _convert(tmp_path, f"product_arn={CN_PRODUCT}", "partition=aws")
    assert r.returncode == 2 and "partition aws is not the partition of option product_arn (aws-cn)" in r.stderr
    r = _convert(tmp_path, f"product_arn={CN_PRODUCT}", "region=us-east-1")
    assert r.returncode == 2 and "product_arn is in partition aws-cn, which does not hold Region us-east-1" in r.stderr
    assert not (tmp_path / "dead.ndjson").exists()
    r = _convert(tmp_path, f"product_arn={CN_PRODUCT}")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out.ndjson").read_text())["Resources"][0]["Partition"] == "aws-cn"
