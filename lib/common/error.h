// Typed errors thrown inside the library. The apps/ front end turns them into one-line messages
// and exit codes; nothing below apps/ prints or exits.
#pragma once

#include <stdexcept>
#include <string>

namespace moeslice {

// Base of every error the library throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The user's input is wrong: a missing or malformed file, a bad flag value, a wrong shape.
// The message names the file, tensor or line and says what was expected and what was found.
class InputError : public Error {
 public:
  using Error::Error;
};

// A file's bytes break its format's rules (safetensors header, JSON, index, corpus line).
class FormatError : public InputError {
 public:
  using InputError::InputError;
};

// A checkpoint's tensors or config do not match what its family requires.
class ModelError : public InputError {
 public:
  using InputError::InputError;
};

// The input asks for something moeslice does not implement (an unknown family, rope type,
// activation). Refused rather than computed wrong.
class UnsupportedError : public InputError {
 public:
  using InputError::InputError;
};

// The operating system refused an operation on a path we were entitled to use (disk full,
// permission denied on the output directory).
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace moeslice
