// The tokenizer a GGUF file carries in its `tokenizer.ggml.*` metadata, as llama.cpp reads it:
// the byte-level BPE vocabulary (`tokenizer.ggml.model` "gpt2"), its merges, the pre-tokenizer
// named by `tokenizer.ggml.pre` (mapped to the regexes llama.cpp's llama-vocab.cpp applies for
// that name), control and user-defined tokens as added tokens, and the BOS / EOS ids. It is turned
// into the equivalent tokenizer.json description and loaded by the one Tokenizer implementation,
// so a GGUF and its model's tokenizer.json encode through the same code.
//
// Also open_tokenizer(): a tokenizer file given on the command line, tokenizer.json or GGUF.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace moeslice {

class GgufMetadata;

// The tokenizer of a GGUF file's metadata. Throws UnsupportedError naming the file and key for a
// tokenizer model other than "gpt2" (SentencePiece "llama", "bert", ...) or a pre-tokenizer name
// with no mapping here, and FormatError naming the file and key for missing or malformed keys.
Tokenizer tokenizer_from_gguf(const GgufMetadata& metadata);

// The regexes llama.cpp splits text with, in order, for a `tokenizer.ggml.pre` name; empty for a
// name with no mapping here.
std::vector<std::string_view> gguf_pre_tokenizer_regexes(std::string_view pre);

// A tokenizer.json file, or a GGUF file's own tokenizer (told apart by the GGUF magic).
Tokenizer open_tokenizer(const std::filesystem::path& path);

}  // namespace moeslice
