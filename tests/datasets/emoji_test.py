"""scripts/datasets/emoji as a user runs it.

    emoji_test.py REPO offline   failures that need no network
    emoji_test.py REPO network   a real build (fetches into REPO/out/cache/npm)
"""

import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

REPO = sys.argv[1] if len(sys.argv) > 1 else "."
SCRIPT = os.path.join(REPO, "scripts", "datasets", "emoji")


def run(out, cache, **env):
    return subprocess.run([SCRIPT, "--out", out, "--cache", cache],
                          env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=1700)


class Failures(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.out = os.path.join(self.dir.name, "emoji")
        self.cache = os.path.join(self.dir.name, "cache")

    def tearDown(self):
        self.dir.cleanup()

    def assertNoDataSetAndNoDebris(self):
        self.assertFalse(os.path.exists(self.out))
        self.assertEqual([n for n in os.listdir(self.dir.name) if n.startswith(".emoji")], [])

    def test_unreachable_registry_stops_naming_the_package(self):
        r = run(self.out, self.cache, npm_config_registry="http://127.0.0.1:9/",
                npm_config_fetch_retries="0")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("emoji-datasource-apple", r.stderr)
        self.assertIn("failed", r.stderr)
        self.assertNoDataSetAndNoDebris()

    def test_untrusted_registry_certificate_says_how_to_trust_it(self):
        # A real TLS registry on loopback whose self-signed certificate npm
        # does not know, as behind a TLS-inspecting proxy.
        key, cert = (os.path.join(self.dir.name, n) for n in ("key.pem", "cert.pem"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-subj", "/CN=127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            r = run(self.out, self.cache,
                    npm_config_registry=f"https://127.0.0.1:{server.server_port}/",
                    npm_config_fetch_retries="0")
        finally:
            server.shutdown()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("emoji-datasource-apple", r.stderr)
        self.assertIn("NODE_EXTRA_CA_CERTS", r.stderr)
        self.assertNoDataSetAndNoDebris()

    def test_corrupt_cached_tarball_stops_naming_the_package(self):
        os.makedirs(self.cache)
        with open(os.path.join(self.cache, "emoji-datasource-apple-16.0.0.tgz"), "wb") as f:
            f.write(b"not the tarball")
        r = run(self.out, self.cache)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("emoji-datasource-apple", r.stderr)
        self.assertIn("integrity", r.stderr)
        self.assertNoDataSetAndNoDebris()

    def test_failed_rebuild_keeps_the_older_data_set(self):
        os.makedirs(os.path.join(self.out, "some class"))
        with open(os.path.join(self.out, "dataset.json"), "w") as f:
            json.dump({"name": "emoji", "version": "15.0.0", "classes": 1}, f)
        os.makedirs(self.cache)
        with open(os.path.join(self.cache, "emoji-datasource-apple-16.0.0.tgz"), "wb") as f:
            f.write(b"corrupt")
        r = run(self.out, self.cache)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.out, "some class")))
        with open(os.path.join(self.out, "dataset.json")) as f:
            self.assertEqual(json.load(f)["version"], "15.0.0")


class Build(unittest.TestCase):
    def test_builds_one_folder_per_emoji_with_four_vendors_on_white(self):
        from PIL import Image
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "emoji")
            r = run(out, os.path.join(REPO, "out", "cache", "npm"))
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(out, "dataset.json")) as f:
                info = json.load(f)
            classes = sorted(n for n in os.listdir(out) if os.path.isdir(os.path.join(out, n)))
            self.assertEqual(len(classes), info["classes"])
            self.assertGreater(len(classes), 1800)
            self.assertIn("grinning face", classes)
            self.assertIn("japan flag", classes)
            self.assertFalse(any("skin tone" in c for c in classes))  # base emoji only
            for label in classes:
                self.assertEqual(sorted(os.listdir(os.path.join(out, label))),
                                 ["apple.png", "facebook.png", "google.png", "twitter.png"])
            for vendor in ("apple", "google", "twitter", "facebook"):
                image = Image.open(os.path.join(out, "grinning face", vendor + ".png"))
                self.assertEqual((image.mode, image.size), ("RGB", (64, 64)))
                self.assertEqual(image.getpixel((0, 0)), (255, 255, 255))  # was transparent
                self.assertNotEqual(image.getpixel((32, 32)), (255, 255, 255))
            # A second run reuses the data set.
            again = run(out, os.path.join(REPO, "out", "cache", "npm"))
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertIn("already built", again.stderr)


if __name__ == "__main__":
    suite = {"offline": Failures, "network": Build}[sys.argv[2]]
    result = unittest.TextTestRunner(verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(suite))
    sys.exit(0 if result.wasSuccessful() else 1)
