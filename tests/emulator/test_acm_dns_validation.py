"""A DNS-validated certificate is issued only once its validation CNAME is in a Route 53 zone
(moto_fixes._patch_acm_dns_validation_needs_the_record)."""

import unittest
from unittest import mock

import boto3
from moto import mock_aws

import moto_fixes

moto_fixes.apply()


class AcmDnsValidation(unittest.TestCase):
    @mock_aws
    def test_pending_until_the_record_is_written_then_issued(self):
        import moto.settings

        with mock.patch.object(moto.settings, "ACM_VALIDATION_WAIT", 0):
            acm = boto3.client("acm", region_name="us-east-2")
            r53 = boto3.client("route53", region_name="us-east-1")
            zone = r53.create_hosted_zone(Name="example.test", CallerReference="z")["HostedZone"]["Id"]
            arn = acm.request_certificate(DomainName="app.example.test", ValidationMethod="DNS")["CertificateArn"]
            cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            self.assertEqual(cert["Status"], "PENDING_VALIDATION")
            record = cert["DomainValidationOptions"][0]["ResourceRecord"]
            self.assertEqual(acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"], "PENDING_VALIDATION")
            r53.change_resource_record_sets(
                HostedZoneId=zone,
                ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                    "Name": record["Name"], "Type": "CNAME", "TTL": 300,
                    "ResourceRecords": [{"Value": record["Value"]}]}}]},
            )
            self.assertEqual(acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"], "ISSUED")


if __name__ == "__main__":
    unittest.main()
