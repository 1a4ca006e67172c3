// Kept so that existing includes keep compiling: token documents and their reader now live in
// lib/text (text/corpus.h: CorpusDocument, alias TokenDocument; CorpusReader; read_token_corpus).
// New code should include "text/corpus.h" directly.
#pragma once

#include "text/corpus.h"
