// Dequantizes raw quantized bytes from files with kernels/dequant (the C++ side of
// tests/reference/check_dequantize.py) and writes the fp32 values, little-endian, to OUT. Rows are
// dequantized in ranges of 1, 2, 3, ... rows, so every call starts at a different row.
//
//   dequantize_tool ggml TYPE COLS DATA OUT                     ggml blocks, e.g. TYPE Q4_K
//   dequantize_tool mxfp4-split COLS BLOCKS SCALES OUT           gpt-oss *_blocks / *_scales
//   dequantize_tool fp8 COLS SCALE_TYPE DATA SCALES OUT          E4M3, 128x128 scales (F32/BF16)
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/ggml_type.h"
#include "kernels/dequant/dequantize.h"

namespace {

using moeslice::DType;
using moeslice::kernels::QuantizedMatrix;

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) bytes[i] = static_cast<std::byte>(chars[i]);
  return bytes;
}

DType ggml_dtype(const std::string& name) {
  for (const auto& type : moeslice::ggml_types())
    if (moeslice::ggml_type_name(type) == name) return type.dtype;
  throw std::runtime_error("unknown ggml type " + name);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

int run(const std::vector<std::string>& args) {
  require(!args.empty(), "usage: dequantize_tool ggml|mxfp4-split|fp8 ...");
  std::vector<std::byte> data, scales;
  QuantizedMatrix matrix;
  std::string out_path;
  if (args[0] == "ggml" && args.size() == 5) {
    const DType dtype = ggml_dtype(args[1]);
    const size_t cols = std::stoul(args[2]);
    data = read_bytes(args[3]);
    out_path = args[4];
    require(moeslice::kernels::can_dequantize_blocks(dtype), args[1] + " is not dequantized");
    matrix = QuantizedMatrix::ggml_blocks(dtype, data.data(), 1, cols);
    require(data.size() % matrix.row_bytes() == 0, "DATA is not whole rows");
    matrix.rows = data.size() / matrix.row_bytes();
  } else if (args[0] == "mxfp4-split" && args.size() == 5) {
    const size_t cols = std::stoul(args[1]);
    data = read_bytes(args[2]);
    scales = read_bytes(args[3]);
    out_path = args[4];
    const size_t rows = data.size() / (cols / 2);
    require(data.size() == rows * cols / 2 && scales.size() == rows * cols / 32,
            "BLOCKS and SCALES do not hold the same rows");
    matrix = QuantizedMatrix::mxfp4_split(data.data(), scales.data(), rows, cols);
  } else if (args[0] == "fp8" && args.size() == 6) {
    const size_t cols = std::stoul(args[1]);
    const DType scale_dtype = args[2] == "BF16" ? DType::BF16 : DType::F32;
    data = read_bytes(args[3]);
    scales = read_bytes(args[4]);
    out_path = args[5];
    const size_t rows = data.size() / cols;
    const size_t scale_count = (rows + 127) / 128 * ((cols + 127) / 128);
    require(data.size() == rows * cols, "DATA is not whole rows");
    require(scales.size() == scale_count * (scale_dtype == DType::BF16 ? 2 : 4),
            "SCALES does not hold one scale per 128x128 block");
    matrix = QuantizedMatrix::fp8_block_scaled(data.data(), scales.data(), scale_dtype, rows, cols);
  } else {
    throw std::runtime_error("bad arguments; see the comment at the top of dequantize_tool.cpp");
  }
  std::vector<float> values(matrix.rows * matrix.cols);
  for (size_t begin = 0, step = 1; begin < matrix.rows; begin += step, ++step) {
    step = std::min(step, matrix.rows - begin);
    moeslice::kernels::dequantize_rows(matrix, begin, step, values.data() + begin * matrix.cols);
  }
  std::ofstream out(out_path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(float)));
  require(static_cast<bool>(out), "cannot write " + out_path);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& error) {
    std::cerr << "dequantize_tool: " << error.what() << "\n";
    return 1;
  }
}
