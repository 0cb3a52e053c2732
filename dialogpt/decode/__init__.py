"""Decoding: generation options, the Responder, reranking (MMI, DialogRPT, log-prob) and the safety filter."""
