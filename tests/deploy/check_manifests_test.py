#!/usr/bin/python3
"""Tests deploy/check-manifests.py: it passes the real manifests and fails each
deliberately broken copy, naming the problem.

usage: tests/deploy/check_manifests_test.py [SOURCE_DIR]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR = os.path.abspath(
    sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-")
    else os.path.join(os.path.dirname(__file__), "..", ".."))
CHECKER = os.path.join(SOURCE_DIR, "deploy", "check-manifests.py")


def run_checker(root):
    return subprocess.run([sys.executable, CHECKER, root], capture_output=True,
                          text=True, timeout=60)


class CheckManifests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="check-manifests-")
        for name in ("Dockerfile", "CMakeLists.txt"):
            shutil.copy(os.path.join(SOURCE_DIR, name), self.tmp)
        shutil.copytree(os.path.join(SOURCE_DIR, "deploy"), os.path.join(self.tmp, "deploy"))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def edit(self, rel, old, new, count=1):
        path = os.path.join(self.tmp, rel)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text, f"fixture text not found in {rel}")
        with open(path, "w") as f:
            f.write(text.replace(old, new, count))

    def assert_fails_with(self, *needles):
        result = run_checker(self.tmp)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        for needle in needles:
            self.assertIn(needle, result.stderr)

    def test_real_manifests_pass(self):
        result = run_checker(SOURCE_DIR)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_unmodified_copy_passes(self):
        result = run_checker(self.tmp)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_yaml_syntax_error_fails(self):
        self.edit("deploy/kubernetes/service.yaml", "  ports:\n", "  ports: [\n")
        self.assert_fails_with("service.yaml: does not parse")

    def test_missing_readiness_probe_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml", "readinessProbe:", "readinessProbeX:")
        self.assert_fails_with("container server", "no readinessProbe")

    def test_missing_liveness_probe_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml", "livenessProbe:", "livenessProbeX:")
        self.assert_fails_with("no livenessProbe")

    def test_probe_on_wrong_port_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml",
                  "livenessProbe:\n            grpc:\n              port: 50051",
                  "livenessProbe:\n            grpc:\n              port: 50052")
        self.assert_fails_with("livenessProbe gRPC port 50052")

    def test_root_container_fails(self):
        self.edit("deploy/kubernetes/retrain-job.yaml", "runAsNonRoot: true", "runAsNonRoot: false", 2)
        self.assert_fails_with("container trainer", "runAsNonRoot is not true")

    def test_uid_zero_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml", "runAsUser: 10001", "runAsUser: 0", 3)
        self.assert_fails_with("runAsUser is missing or 0")

    def test_writable_root_fs_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml", "readOnlyRootFilesystem: true",
                  "readOnlyRootFilesystem: false")
        self.assert_fails_with("initContainer fetch-bundle", "readOnlyRootFilesystem")

    def test_capabilities_kept_fails(self):
        self.edit("deploy/kubernetes/retrain-job.yaml", "drop: [ALL]", "drop: [NET_RAW]")
        self.assert_fails_with("capabilities.drop lacks ALL")

    def test_missing_memory_limit_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml",
                  "limits: {cpu: \"2\", memory: 1Gi}", "limits: {cpu: \"2\"}")
        self.assert_fails_with("container server", "resources.limits.memory missing")

    def test_port_mismatch_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml", "containerPort: 50051", "containerPort: 8080")
        self.assert_fails_with("containerPort 8080 is not EXPOSEd", "EMBEDSEARCH_PORT 50051")

    def test_service_selecting_nothing_fails(self):
        self.edit("deploy/kubernetes/service.yaml", "app.kubernetes.io/component: server",
                  "app.kubernetes.io/component: sever")
        self.assert_fails_with("Service/embedsearch", "matches no pod template")

    def test_other_image_fails(self):
        self.edit("deploy/kubernetes/retrain-job.yaml", "image: embedsearch:0.1.0",
                  "image: embedsearch:0.0.9")
        self.assert_fails_with("different images", "not tagged with the project version")

    def test_undefined_pvc_fails(self):
        self.edit("deploy/kubernetes/retrain-job.yaml", "claimName: embedsearch-training-data",
                  "claimName: embedsearch-trainig-data")
        self.assert_fails_with("undefined PVC embedsearch-trainig-data")

    def test_undefined_config_map_key_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml", "data:\n  version: v1", "data:\n  versoin: v1")
        self.assert_fails_with("undefined ConfigMap key embedsearch-bundle/version")

    def test_compose_server_without_healthcheck_fails(self):
        self.edit("deploy/compose.yaml", "    healthcheck:\n", "    healthcheckX:\n")
        self.assert_fails_with("service server", "without a healthcheck")

    def test_compose_root_user_fails(self):
        self.edit("deploy/compose.yaml", 'user: "10001:10001"', 'user: "0:0"')
        self.assert_fails_with("service trainer", "runs as root")

    def test_compose_port_mismatch_fails(self):
        self.edit("deploy/compose.yaml", 'EMBEDSEARCH_PORT: "50051"', 'EMBEDSEARCH_PORT: "50052"')
        self.assert_fails_with("EMBEDSEARCH_PORT 50052 differs")

    def test_metrics_port_not_a_container_port_fails(self):
        self.edit("deploy/kubernetes/deployment.yaml", "containerPort: 9464", "containerPort: 9465")
        self.assert_fails_with("EMBEDSEARCH_METRICS_PORT 9464 is not a containerPort",
                               "annotation prometheus.io/port 9464 is not a containerPort")

    def test_compose_metrics_port_unpublished_fails(self):
        self.edit("deploy/compose.yaml", ':9464"', ':9465"')
        self.assert_fails_with("EMBEDSEARCH_METRICS_PORT 9464 is not published")

    def test_dockerfile_root_user_fails(self):
        self.edit("Dockerfile", "USER 10001:10001", "USER root")
        self.assert_fails_with("Dockerfile: final stage runs as root")


if __name__ == "__main__":
    unittest.main(verbosity=2)
