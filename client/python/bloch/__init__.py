"""Python client of the bloch vector search service (gRPC).

    import numpy as np, bloch
    client = bloch.Client("127.0.0.1:50051")
    client.create_collection("docs", dimension=384, index_spec="QC128,Flat", train_on_first_n=1000)
    client.upsert("docs", ids, vectors, payloads)          # vectors: (n, d) array
    hits = client.search("docs", queries, k=10)            # one list of Hit per query

Errors are raised as bloch.BlochError carrying the gRPC status code and the server's message,
which names the offending field. Calls failing with UNAVAILABLE are retried with exponential
backoff, as in the C++ client.
"""

from .client import BlochError, Client, Hit

__all__ = ["BlochError", "Client", "Hit"]
