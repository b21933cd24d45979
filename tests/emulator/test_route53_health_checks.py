"""moto_fixes.py's CreateHealthCheck idempotency by CallerReference (Route 53 API reference,
CreateHealthCheck), through the real emulator with boto3."""

import unittest

from test_aws_model import EmulatorTestCase, error_of

CONFIG = {"Type": "HTTPS", "FullyQualifiedDomainName": "app.deployer.test", "Port": 443, "ResourcePath": "/health",
          "RequestInterval": 30, "FailureThreshold": 3, "Regions": ["us-east-1", "us-west-2", "eu-west-1"]}


class CreateHealthCheckCallerReferenceTest(EmulatorTestCase):
    def test_the_same_reference_and_settings_answer_the_existing_check(self):
        route53 = self.emu.client("route53")
        first = route53.create_health_check(CallerReference="ref-1", HealthCheckConfig=CONFIG)
        again = route53.create_health_check(CallerReference="ref-1", HealthCheckConfig=dict(CONFIG))
        self.assertEqual(first["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(again["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(again["HealthCheck"]["Id"], first["HealthCheck"]["Id"])
        self.assertEqual(again["HealthCheck"]["CallerReference"], "ref-1")
        self.assertEqual(again["HealthCheck"]["HealthCheckConfig"]["ResourcePath"], "/health")
        ids = [c["Id"] for c in route53.list_health_checks()["HealthChecks"] if c["CallerReference"] == "ref-1"]
        self.assertEqual(ids, [first["HealthCheck"]["Id"]])

    def test_the_same_reference_with_other_settings_already_exists(self):
        route53 = self.emu.client("route53")
        first = route53.create_health_check(CallerReference="ref-2", HealthCheckConfig=CONFIG)["HealthCheck"]["Id"]
        status, code = error_of(
            lambda: route53.create_health_check(CallerReference="ref-2", HealthCheckConfig=dict(CONFIG, ResourcePath="/other"))
        )
        self.assertEqual((status, code), (409, "HealthCheckAlreadyExists"))
        self.assertEqual(route53.get_health_check(HealthCheckId=first)["HealthCheck"]["HealthCheckConfig"]["ResourcePath"], "/health")
        self.assertEqual(sum(c["CallerReference"] == "ref-2" for c in route53.list_health_checks()["HealthChecks"]), 1)

    def test_the_reference_of_a_deleted_check_already_exists_whatever_the_settings(self):
        route53 = self.emu.client("route53")
        first = route53.create_health_check(CallerReference="ref-3", HealthCheckConfig=CONFIG)["HealthCheck"]["Id"]
        route53.delete_health_check(HealthCheckId=first)
        for config in (CONFIG, dict(CONFIG, Port=8443)):
            status, code = error_of(lambda: route53.create_health_check(CallerReference="ref-3", HealthCheckConfig=config))
            self.assertEqual((status, code), (409, "HealthCheckAlreadyExists"))
        self.assertFalse([c for c in route53.list_health_checks()["HealthChecks"] if c["CallerReference"] == "ref-3"])

    def test_a_new_reference_with_the_same_settings_creates_another_check(self):
        route53 = self.emu.client("route53")
        a = route53.create_health_check(CallerReference="ref-4a", HealthCheckConfig=CONFIG)["HealthCheck"]["Id"]
        b = route53.create_health_check(CallerReference="ref-4b", HealthCheckConfig=CONFIG)["HealthCheck"]["Id"]
        self.assertNotEqual(a, b)


if __name__ == "__main__":
    unittest.main()
