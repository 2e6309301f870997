"""The Python client against a real blochd process on loopback (run by ctest with BLOCHD set to
the server binary and PYTHONPATH to the built package)."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import numpy as np

import bloch


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="bloch-python-")
        port_file = os.path.join(cls.dir.name, "ports")
        cls.log = open(os.path.join(cls.dir.name, "blochd.log"), "w")
        cls.server = subprocess.Popen(
            [os.environ["BLOCHD"], "--data-dir", os.path.join(cls.dir.name, "data"),
             "--listen", "127.0.0.1:0", "--admin-listen", "", "--port-file", port_file],
            stdout=cls.log, stderr=subprocess.STDOUT)
        for _ in range(600):
            if os.path.exists(port_file):
                break
            if cls.server.poll() is not None:
                raise RuntimeError("blochd exited early")
            time.sleep(0.05)
        with open(port_file) as f:
            port = int(f.read().split()[0].split("=")[1])
        cls.client = bloch.Client(f"127.0.0.1:{port}", timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.send_signal(signal.SIGTERM)
        cls.server.wait(timeout=60)
        cls.log.close()
        cls.dir.cleanup()

    def test_round_trip(self):
        rng = np.random.default_rng(3)
        centres = rng.normal(size=(4, 24)).astype(np.float32)
        vectors = centres[rng.integers(0, 4, size=300)] + 0.3 * rng.normal(size=(300, 24))
        ids = [f"p{i}" for i in range(300)]
        payloads = [{"i": i} for i in range(300)]
        self.assertTrue(self.client.health())
        info = self.client.create_collection("py", 24, "QC12,Flat")
        self.assertEqual(info["head_state"], "untrained")
        self.assertEqual(self.client.upsert("py", ids, vectors, payloads), 300)
        stages = []
        self.client.train_head("py", sample_size=300, max_epochs=2,
                               on_progress=lambda p: stages.append(p.stage))
        self.assertEqual(self.client.describe("py")["head_state"], "trained")
        self.assertTrue(stages)

        hits = self.client.search("py", vectors[:5], k=3)
        self.assertEqual(len(hits), 5)
        for row, result in enumerate(hits):
            self.assertEqual(len(result), 3)
            self.assertEqual(result[0].payload, {"i": int(result[0].id[1:])})
            self.assertAlmostEqual(result[0].fidelity, float(np.exp(result[0].log_fidelity)))
        self.assertEqual(hits[0][0].id, "p0")

        got = self.client.get("py", ["p7", "nope"], with_vectors=True)
        self.assertEqual([d["id"] for d in got], ["p7"])
        np.testing.assert_array_equal(got[0]["vector"], vectors[7].astype(np.float32))
        self.assertEqual(self.client.delete("py", ["p7", "nope"]), 1)
        self.assertEqual(self.client.describe("py")["documents"], 299)
        self.assertEqual(self.client.describe("py")["index_entries"], 300)
        self.client.compact("py")
        self.assertEqual(self.client.describe("py")["index_entries"], 299)
        self.assertIn("py", [c["name"] for c in self.client.list_collections()])

    def test_errors_carry_code_and_field(self):
        with self.assertRaises(bloch.BlochError) as caught:
            self.client.search("missing", np.zeros(8, dtype=np.float32))
        self.assertEqual(caught.exception.code.name, "NOT_FOUND")
        self.assertIn("'missing'", caught.exception.message)
        self.client.create_collection("strict", 8, "QC4,Flat")
        with self.assertRaises(bloch.BlochError) as caught:
            self.client.upsert("strict", ["a", "b"], np.ones((2, 7)))
        self.assertEqual(caught.exception.code.name, "INVALID_ARGUMENT")
        self.assertIn("documents[0].vector has 7 values", caught.exception.message)
        with self.assertRaises(ValueError):
            self.client.upsert("strict", ["a"], np.ones((2, 8)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
