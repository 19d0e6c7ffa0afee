// Binary checkpoints (format in checkpoint.hpp).
#include <loglinear/models/checkpoint.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace loglinear::models {

namespace {
constexpr char kMagicV1[9] = "LLCKPT01";  // read only: files written before the checksum
constexpr char kMagic[9] = "LLCKPT02";
constexpr char kEnd[9] = "LLCKPTEN";

// FNV-1a, 64 bit, over every byte from the magic to the end marker: a flipped bit anywhere in
// the names, shapes or values is reported as a corrupt file instead of loading silently.
struct Fnv1a {
  std::uint64_t h = 14695981039346656037ull;
  void add(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ std::uint8_t(p[i])) * 1099511628211ull;
  }
};

struct Writer {
  std::ofstream f;
  Fnv1a hash;
  void bytes(const char* p, size_t n) {
    f.write(p, std::streamsize(n));
    hash.add(p, n);
  }
  template <class T>
  void put(const T& x) { bytes(reinterpret_cast<const char*>(&x), sizeof x); }
};

struct Reader {
  std::istringstream f;  // the file's bytes, already checked against the checksum (v2)
  std::string path;
  // Reads exactly n bytes or throws: a truncated file never yields garbage.
  void bytes(char* out, size_t n) {
    if (!f.read(out, std::streamsize(n))) {
      throw std::runtime_error("checkpoint \"" + path + "\": truncated or unreadable file");
    }
  }
  template <class T>
  T get() {
    T x;
    bytes(reinterpret_cast<char*>(&x), sizeof x);
    return x;
  }
};

// One entry's name and shape (its values follow in the file).
struct EntryHeader {
  std::string name;
  std::int64_t rows = 0, cols = 0;
};
EntryHeader get_header(Reader& r) {
  const auto len = r.get<std::uint32_t>();
  if (len > 4096) throw std::runtime_error("checkpoint \"" + r.path + "\": corrupt parameter name");
  EntryHeader h;
  h.name.assign(len, '\0');
  r.bytes(h.name.data(), len);
  h.rows = r.get<std::int64_t>();
  h.cols = r.get<std::int64_t>();
  if (h.rows < 0 || h.cols < 0 || (h.cols > 0 && h.rows > (std::int64_t(1) << 40) / h.cols)) {
    throw std::runtime_error("checkpoint \"" + r.path + "\": corrupt shape of " + h.name);
  }
  return h;
}
void put_header(Writer& w, const std::string& name, std::int64_t rows, std::int64_t cols) {
  w.put(std::uint32_t(name.size()));
  w.bytes(name.data(), name.size());
  w.put(rows);
  w.put(cols);
}
}  // namespace

template <class Scalar>
void save_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params,
                     const std::string& architecture) {
  const std::string tmp = path + ".tmp";
  {
    Writer w{std::ofstream(tmp, std::ios::binary | std::ios::trunc), {}};
    if (!w.f) throw std::runtime_error("checkpoint \"" + path + "\": cannot open for writing");
    w.bytes(kMagic, 8);
    w.put(std::uint32_t(params.size() + (architecture.empty() ? 0 : 1)));
    // The architecture entry is an ordinary entry without values, so older readers see a name
    // mismatch (a clear error) rather than a corrupt file.
    if (!architecture.empty()) put_header(w, "@" + architecture, 0, 0);
    for (const auto* p : params) {
      put_header(w, p->name, p->value.rows(), p->value.cols());
      for (Index i = 0; i < p->value.size(); ++i) w.put(double(p->value.data()[i]));
    }
    w.bytes(kEnd, 8);
    const std::uint64_t checksum = w.hash.h;
    w.f.write(reinterpret_cast<const char*>(&checksum), sizeof checksum);
    if (!w.f) throw std::runtime_error("checkpoint \"" + path + "\": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("checkpoint \"" + path + "\": cannot rename " + tmp);
  }
}

template <class Scalar>
void load_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params,
                     const std::string& architecture) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("checkpoint \"" + path + "\": cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (bytes.size() < 8) throw std::runtime_error("checkpoint \"" + path + "\": truncated or unreadable file");
  const bool v1 = std::memcmp(bytes.data(), kMagicV1, 8) == 0;
  if (!v1 && std::memcmp(bytes.data(), kMagic, 8) != 0) {
    throw std::runtime_error("checkpoint \"" + path + "\": not a loglinear checkpoint (bad magic)");
  }
  if (!v1) {
    // The checksum first: a changed byte in a count, name or shape is corruption, not a mismatch.
    if (bytes.size() < 8 + 8 + 8) throw std::runtime_error("checkpoint \"" + path + "\": truncated or unreadable file");
    Fnv1a hash;
    hash.add(bytes.data(), bytes.size() - 8);
    std::uint64_t stored;
    std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
    if (stored != hash.h) {
      throw std::runtime_error("checkpoint \"" + path + "\": corrupt file (checksum mismatch: truncated, or the "
                               "contents changed after it was written)");
    }
    bytes.resize(bytes.size() - 8);
  }
  Reader r{std::istringstream(std::move(bytes)), path};
  char magic[8];
  r.bytes(magic, 8);
  auto count = r.get<std::uint32_t>();
  // The first entry is either the architecture entry or the first parameter's header.
  EntryHeader first;
  bool have_first = false;
  if (count > 0) {
    first = get_header(r);
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
    const EntryHeader h = have_first ? first : get_header(r);
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
    for (Index i = 0; i < v.size(); ++i) v.data()[i] = Scalar(r.get<double>());
    values.push_back(std::move(v));
  }
  char end[8];
  r.bytes(end, 8);
  if (std::memcmp(end, kEnd, 8) != 0) {
    throw std::runtime_error("checkpoint \"" + path + "\": corrupt file (bad end marker)");
  }
  if (r.f.peek() != std::char_traits<char>::eof()) {
    throw std::runtime_error("checkpoint \"" + path + "\": corrupt file (bytes after the end marker)");
  }
  for (size_t i = 0; i < params.size(); ++i) params[i]->value = std::move(values[i]);
}

template void save_checkpoint<float>(const std::string&, const std::vector<Param<float>*>&, const std::string&);
template void save_checkpoint<double>(const std::string&, const std::vector<Param<double>*>&, const std::string&);
template void load_checkpoint<float>(const std::string&, const std::vector<Param<float>*>&, const std::string&);
template void load_checkpoint<double>(const std::string&, const std::vector<Param<double>*>&, const std::string&);

}  // namespace loglinear::models
