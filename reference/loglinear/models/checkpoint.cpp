// Binary checkpoints (format in checkpoint.hpp).
#include <loglinear/models/checkpoint.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace loglinear::models {

namespace {
constexpr char kMagic[9] = "LLCKPT01";
constexpr char kEnd[9] = "LLCKPTEN";

template <class T>
void put(std::ofstream& f, const T& x) { f.write(reinterpret_cast<const char*>(&x), sizeof x); }

// Reads exactly n bytes or throws: a truncated file never yields garbage.
void get_bytes(std::ifstream& f, char* out, size_t n, const std::string& path) {
  if (!f.read(out, std::streamsize(n))) {
    throw std::runtime_error("checkpoint \"" + path + "\": truncated or unreadable file");
  }
}
template <class T>
T get(std::ifstream& f, const std::string& path) {
  T x;
  get_bytes(f, reinterpret_cast<char*>(&x), sizeof x, path);
  return x;
}

// One entry's name and shape (its values follow in the file).
struct EntryHeader {
  std::string name;
  std::int64_t rows = 0, cols = 0;
};
EntryHeader get_header(std::ifstream& f, const std::string& path) {
  const auto len = get<std::uint32_t>(f, path);
  if (len > 4096) throw std::runtime_error("checkpoint \"" + path + "\": corrupt parameter name");
  EntryHeader h;
  h.name.assign(len, '\0');
  get_bytes(f, h.name.data(), len, path);
  h.rows = get<std::int64_t>(f, path);
  h.cols = get<std::int64_t>(f, path);
  return h;
}
void put_header(std::ofstream& f, const std::string& name, std::int64_t rows, std::int64_t cols) {
  put(f, std::uint32_t(name.size()));
  f.write(name.data(), std::streamsize(name.size()));
  put(f, rows);
  put(f, cols);
}
}  // namespace

template <class Scalar>
void save_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params,
                     const std::string& architecture) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("checkpoint \"" + path + "\": cannot open for writing");
    f.write(kMagic, 8);
    put(f, std::uint32_t(params.size() + (architecture.empty() ? 0 : 1)));
    // The architecture entry is an ordinary entry without values, so older readers see a name
    // mismatch (a clear error) rather than a corrupt file.
    if (!architecture.empty()) put_header(f, "@" + architecture, 0, 0);
    for (const auto* p : params) {
      put_header(f, p->name, p->value.rows(), p->value.cols());
      for (Index i = 0; i < p->value.size(); ++i) put(f, double(p->value.data()[i]));
    }
    f.write(kEnd, 8);
    if (!f) throw std::runtime_error("checkpoint \"" + path + "\": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("checkpoint \"" + path + "\": cannot rename " + tmp);
  }
}

template <class Scalar>
void load_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params,
                     const std::string& architecture) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("checkpoint \"" + path + "\": cannot open for reading");
  char magic[8];
  get_bytes(f, magic, 8, path);
  if (std::memcmp(magic, kMagic, 8) != 0) {
    throw std::runtime_error("checkpoint \"" + path + "\": not a loglinear checkpoint (bad magic)");
  }
  auto count = get<std::uint32_t>(f, path);
  // The first entry is either the architecture entry or the first parameter's header.
  EntryHeader first;
  bool have_first = false;
  if (count > 0) {
    first = get_header(f, path);
    have_first = true;
    if (!first.name.empty() && first.name[0] == '@') {
      if (first.rows != 0 || first.cols != 0)
        throw std::runtime_error("checkpoint \"" + path + "\": corrupt architecture entry");
      const std::string file_arch = first.name.substr(1);
      if (!architecture.empty() && file_arch != architecture) {
        throw std::invalid_argument("checkpoint \"" + path + "\": written by the model \"" + file_arch +
                                    "\", this model is \"" + architecture + "\"");
      }
      have_first = false;
      --count;
    }
  }
  if (count != params.size()) {
    throw std::invalid_argument("checkpoint \"" + path + "\": expected " + std::to_string(params.size()) +
                                " parameters, the file has " + std::to_string(count));
  }
  std::vector<RowMatrix<Scalar>> values;
  for (const auto* p : params) {
    const EntryHeader h = have_first ? first : get_header(f, path);
    have_first = false;
    const std::string& name = h.name;
    const auto rows = h.rows, cols = h.cols;
    if (name != p->name || rows != p->value.rows() || cols != p->value.cols()) {
      throw std::invalid_argument("checkpoint \"" + path + "\": expected " + p->name + " [" +
                                  std::to_string(p->value.rows()) + "," + std::to_string(p->value.cols()) +
                                  "], the file has " + name + " [" + std::to_string(rows) + "," +
                                  std::to_string(cols) + "]");
    }
    RowMatrix<Scalar> v(rows, cols);
    for (Index i = 0; i < v.size(); ++i) v.data()[i] = Scalar(get<double>(f, path));
    values.push_back(std::move(v));
  }
  char end[8];
  get_bytes(f, end, 8, path);
  if (std::memcmp(end, kEnd, 8) != 0) {
    throw std::runtime_error("checkpoint \"" + path + "\": corrupt file (bad end marker)");
  }
  for (size_t i = 0; i < params.size(); ++i) params[i]->value = std::move(values[i]);
}

template void save_checkpoint<float>(const std::string&, const std::vector<Param<float>*>&, const std::string&);
template void save_checkpoint<double>(const std::string&, const std::vector<Param<double>*>&, const std::string&);
template void load_checkpoint<float>(const std::string&, const std::vector<Param<float>*>&, const std::string&);
template void load_checkpoint<double>(const std::string&, const std::vector<Param<double>*>&, const std::string&);

}  // namespace loglinear::models
