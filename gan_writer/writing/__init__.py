"""The writing front: forms, constrained decoding, reranking, story endings, scripts, safety."""
