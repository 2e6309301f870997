"""The bloch client: a thin layer over the generated bloch.v1 stubs that accepts numpy arrays."""

import json
import random
import time
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Sequence

import grpc
import numpy as np

from bloch import health_pb2, health_pb2_grpc
from bloch.v1 import bloch_pb2, bloch_pb2_grpc


class BlochError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `message` the server's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class Hit(NamedTuple):
    id: str
    fidelity: float
    log_fidelity: float
    payload: Any


_STATES = {0: "unspecified", 1: "untrained", 2: "training", 3: "trained"}


def _info(message) -> dict:
    return {
        "name": message.name,
        "dimension": message.dimension,
        "index_spec": message.index_spec,
        "qubits": message.qubits,
        "code_bits": message.code_bits,
        "code_bytes": message.code_bytes,
        "head_state": _STATES.get(message.head_state, "unspecified"),
        "head": message.head_description,
        "head_parameters": message.head_parameters,
        "documents": message.documents,
        "index_entries": message.index_entries,
        "index_bytes": message.index_bytes,
        "keeps_vectors": message.keeps_vectors,
    }


def _payload(text: str) -> Any:
    return json.loads(text) if text else None


def _rows(vectors, name: str) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, dimension), got shape {array.shape}")
    return array


class Client:
    """Connects to blochd. Thread-safe; share one per process."""

    def __init__(self, address: str = "127.0.0.1:50051", *, token: Optional[str] = None,
                 tls: bool = False, root_certificates: Optional[bytes] = None,
                 timeout: float = 60.0, max_attempts: int = 6, initial_backoff: float = 0.1,
                 max_backoff: float = 5.0, max_message_bytes: int = 64 << 20):
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        if tls or root_certificates:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._stub = bloch_pb2_grpc.BlochStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._metadata = [("authorization", f"Bearer {token}")] if token else []
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method: Callable, request):
        backoff = self._initial_backoff
        for attempt in range(self._max_attempts):
            try:
                return method(request, timeout=self._timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                code = error.code()
                if code != grpc.StatusCode.UNAVAILABLE or attempt + 1 == self._max_attempts:
                    raise BlochError(code, error.details() or "") from None
            time.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self._max_backoff)
        raise AssertionError("unreachable")

    # -- collections --------------------------------------------------------------------------
    def create_collection(self, name: str, dimension: int, index_spec: str = "", *,
                          train_on_first_n: Optional[int] = None,
                          head_file: Optional[bytes] = None, discard_vectors: bool = False,
                          seed: int = 0) -> dict:
        request = bloch_pb2.CreateCollectionRequest(
            name=name, dimension=dimension, index_spec=index_spec,
            discard_vectors=discard_vectors, seed=seed)
        if train_on_first_n is not None:
            request.train_on_first_n = train_on_first_n
        if head_file is not None:
            request.head_file = head_file
        return _info(self._call(self._stub.CreateCollection, request))

    def drop_collection(self, name: str) -> None:
        self._call(self._stub.DropCollection, bloch_pb2.DropCollectionRequest(name=name))

    def list_collections(self) -> List[dict]:
        response = self._call(self._stub.ListCollections, bloch_pb2.ListCollectionsRequest())
        return [_info(c) for c in response.collections]

    def describe(self, name: str) -> dict:
        return _info(self._call(self._stub.DescribeCollection,
                                bloch_pb2.DescribeCollectionRequest(name=name)))

    # -- documents ----------------------------------------------------------------------------
    def upsert(self, collection: str, ids: Sequence[str], vectors,
               payloads: Optional[Sequence[Any]] = None) -> int:
        """Inserts or replaces documents (one all-or-nothing batch); returns how many."""
        rows = _rows(vectors, "vectors")
        if len(ids) != rows.shape[0]:
            raise ValueError(f"{len(ids)} ids for {rows.shape[0]} vectors")
        if payloads is not None and len(payloads) != len(ids):
            raise ValueError(f"{len(payloads)} payloads for {len(ids)} ids")
        request = bloch_pb2.UpsertRequest(collection=collection)
        for i, doc_id in enumerate(ids):
            doc = request.documents.add(id=str(doc_id))
            doc.vector.extend(rows[i].tolist())
            if payloads is not None and payloads[i] is not None:
                payload = payloads[i]
                doc.payload_json = payload if isinstance(payload, str) else json.dumps(payload)
        return self._call(self._stub.Upsert, request).upserted

    def delete(self, collection: str, ids: Iterable[str]) -> int:
        """Deletes documents; returns how many were stored."""
        request = bloch_pb2.DeleteRequest(collection=collection, ids=list(ids))
        return self._call(self._stub.Delete, request).deleted

    def get(self, collection: str, ids: Iterable[str], with_vectors: bool = False) -> List[dict]:
        """Stored documents among `ids` (missing ones are left out), in request order."""
        request = bloch_pb2.GetRequest(collection=collection, ids=list(ids),
                                       with_vectors=with_vectors)
        response = self._call(self._stub.Get, request)
        out = []
        for doc in response.documents:
            item = {"id": doc.id, "payload": _payload(doc.payload_json)}
            if with_vectors:
                item["vector"] = np.asarray(doc.vector, dtype=np.float32)
            out.append(item)
        return out

    def search(self, collection: str, queries, k: int = 10, *, ef: int = 0, nprobe: int = 0,
               rerank_factor: int = 0, with_payload: bool = True) -> List[List[Hit]]:
        """Top-k hits by fidelity for each query row (a 1-D array is one query).

        ef (HNSW), nprobe (IVF) and rerank_factor (fast-scan kinds) are 0 for the defaults."""
        rows = _rows(queries, "queries")
        request = bloch_pb2.SearchRequest(collection=collection, k=k, ef=ef, nprobe=nprobe,
                                          rerank_factor=rerank_factor,
                                          with_payload=with_payload)
        for row in rows:
            request.queries.add().values.extend(row.tolist())
        response = self._call(self._stub.Search, request)
        return [[Hit(h.id, h.fidelity, h.log_fidelity, _payload(h.payload_json))
                 for h in result.hits] for result in response.results]

    # -- head -------------------------------------------------------------------------------
    def train_head(self, collection: str, *, sample_size: int = 0,
                   pairs: Optional[Sequence[tuple]] = None, max_epochs: int = 0,
                   on_progress: Optional[Callable[[Any], None]] = None) -> None:
        """Trains the head: unsupervised on `sample_size` stored vectors, or supervised on
        `pairs` of (query vector, positive document id). Not retried."""
        request = bloch_pb2.TrainHeadRequest(collection=collection, max_epochs=max_epochs)
        if pairs is not None:
            for query, positive_id in pairs:
                pair = request.supervised.pairs.add(positive_id=positive_id)
                pair.query.extend(np.asarray(query, dtype=np.float32).tolist())
        else:
            request.unsupervised.sample_size = sample_size
        try:
            for progress in self._stub.TrainHead(request, metadata=self._metadata):
                if on_progress is not None:
                    on_progress(progress)
        except grpc.RpcError as error:
            raise BlochError(error.code(), error.details() or "") from None

    def compact(self, collection: str) -> None:
        """Rebuilds the index with the current head, dropping replaced and deleted entries."""
        request = bloch_pb2.TrainHeadRequest(collection=collection)
        request.compact.SetInParent()
        try:
            for _ in self._stub.TrainHead(request, metadata=self._metadata):
                pass
        except grpc.RpcError as error:
            raise BlochError(error.code(), error.details() or "") from None

    def health(self) -> bool:
        """True when the server reports SERVING."""
        try:
            response = self._call(self._health.Check, health_pb2.HealthCheckRequest())
        except BlochError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING
