//! Tokenizers built from GGUF metadata: SentencePiece-style (`llama`) and byte-level BPE (`gpt2`).
