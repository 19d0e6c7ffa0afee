// Binary checkpoints (format in checkpoint.hpp).
#include <loglinear/train/checkpoint.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace loglinear::train {

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

// A cursor over the bytes of a checkpoint (already checked against the checksum for v2). Every
// read checks the bytes that remain first, so a declared size never reads past the end.
struct Reader {
  std::string_view rest;
  const std::string& source;
  std::string where() const { return "checkpoint \"" + source + "\": "; }
  [[noreturn]] void truncated() const { throw std::runtime_error(where() + "truncated or unreadable file"); }
  // Reads exactly n bytes or throws: a truncated file never yields garbage.
  void bytes(char* out, size_t n) {
    if (rest.size() < n) truncated();
    std::memcpy(out, rest.data(), n);
    rest.remove_prefix(n);
  }
  template <class T>
  T get() {
    T x;
    bytes(reinterpret_cast<char*>(&x), sizeof x);
    return x;
  }
};

// Smallest entry: name length, empty name, rows, cols, no values.
constexpr size_t kMinEntryBytes = sizeof(std::uint32_t) + 2 * sizeof(std::int64_t);
constexpr std::uint32_t kMaxNameBytes = 4096;
constexpr std::int64_t kMaxEntryValues = std::int64_t(1) << 40;

// One entry's name and shape (its values follow in the file).
struct EntryHeader {
  std::string name;
  std::int64_t rows = 0, cols = 0;
};
EntryHeader get_header(Reader& r) {
  const auto len = r.get<std::uint32_t>();
  if (len > kMaxNameBytes) {
    throw std::runtime_error(r.where() + "corrupt parameter name (length " + std::to_string(len) +
                             ", expected at most " + std::to_string(kMaxNameBytes) + ")");
  }
  if (len > r.rest.size()) r.truncated();
  EntryHeader h;
  h.name.assign(r.rest.data(), len);
  r.rest.remove_prefix(len);
  h.rows = r.get<std::int64_t>();
  h.cols = r.get<std::int64_t>();
  if (h.rows < 0 || h.cols < 0 || (h.cols > 0 && h.rows > kMaxEntryValues / h.cols)) {
    throw std::runtime_error(r.where() + "corrupt shape of " + h.name + " [" + std::to_string(h.rows) + "," +
                             std::to_string(h.cols) + "] (expected 0 <= rows * cols <= 2^40)");
  }
  // The values must be there before anything is compared or allocated for them.
  if (std::uint64_t(h.rows * h.cols) > r.rest.size() / sizeof(double)) r.truncated();
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
  // What the reader refuses is refused here too, before a file is touched.
  for (const auto* p : params) {
    if (p->name.size() > kMaxNameBytes) {
      throw std::invalid_argument("params: expected names of at most " + std::to_string(kMaxNameBytes) +
                                  " bytes, got one of " + std::to_string(p->name.size()));
    }
  }
  if (architecture.size() + 1 > kMaxNameBytes) {
    throw std::invalid_argument("architecture: expected at most " + std::to_string(kMaxNameBytes - 1) +
                                " bytes, got " + std::to_string(architecture.size()));
  }
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
  // Only a regular file: a directory, FIFO or device (/dev/zero) would read garbage or forever.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error("checkpoint \"" + path + "\": cannot open for reading" +
                             (std::filesystem::exists(path, ec) ? " (not a regular file)" : ""));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("checkpoint \"" + path + "\": cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) throw std::runtime_error("checkpoint \"" + path + "\": read failed");
  load_checkpoint_bytes(bytes, params, architecture, path);
}

template <class Scalar>
void load_checkpoint_bytes(std::string_view bytes, const std::vector<Param<Scalar>*>& params,
                           const std::string& architecture, const std::string& source) {
  const std::string where = "checkpoint \"" + source + "\": ";
  if (bytes.size() < 8) throw std::runtime_error(where + "truncated or unreadable file");
  const bool v1 = std::memcmp(bytes.data(), kMagicV1, 8) == 0;
  if (!v1 && std::memcmp(bytes.data(), kMagic, 8) != 0) {
    throw std::runtime_error(where + "not a loglinear checkpoint (bad magic)");
  }
  if (!v1) {
    // The checksum first: a changed byte in a count, name or shape is corruption, not a mismatch.
    if (bytes.size() < 8 + 8 + 8) throw std::runtime_error(where + "truncated or unreadable file");
    Fnv1a hash;
    hash.add(bytes.data(), bytes.size() - 8);
    std::uint64_t stored;
    std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
    if (stored != hash.h) {
      throw std::runtime_error(where + "corrupt file (checksum mismatch: truncated, or the "
                               "contents changed after it was written)");
    }
    bytes.remove_suffix(8);
  }
  Reader r{bytes, source};
  r.rest.remove_prefix(8);  // the magic
  auto count = r.get<std::uint32_t>();
  // Each entry takes at least kMinEntryBytes, and the end marker follows them.
  if (r.rest.size() < 8) r.truncated();
  if (count > (r.rest.size() - 8) / kMinEntryBytes) {
    throw std::runtime_error(where + "corrupt file (" + std::to_string(count) + " entries declared, " +
                             std::to_string(r.rest.size()) + " bytes left)");
  }
  // The first entry is either the architecture entry or the first parameter's header.
  EntryHeader first;
  bool have_first = false;
  if (count > 0) {
    first = get_header(r);
    have_first = true;
    if (!first.name.empty() && first.name[0] == '@') {
      if (first.rows != 0 || first.cols != 0) throw std::runtime_error(where + "corrupt architecture entry");
      const std::string file_arch = first.name.substr(1);
      if (!architecture.empty() && file_arch != architecture) {
        throw std::invalid_argument(where + "written by the model \"" + file_arch + "\", this model is \"" +
                                    architecture + "\"");
      }
      have_first = false;
      --count;
    }
  }
  if (count != params.size()) {
    throw std::invalid_argument(where + "expected " + std::to_string(params.size()) +
                                " parameters, the file has " + std::to_string(count));
  }
  std::vector<RowMatrix<Scalar>> values;
  values.reserve(params.size());
  for (const auto* p : params) {
    const EntryHeader h = have_first ? first : get_header(r);
    have_first = false;
    const std::string& name = h.name;
    const auto rows = h.rows, cols = h.cols;
    if (name != p->name || rows != p->value.rows() || cols != p->value.cols()) {
      throw std::invalid_argument(where + "expected " + p->name + " [" + std::to_string(p->value.rows()) + "," +
                                  std::to_string(p->value.cols()) + "], the file has " + name + " [" +
                                  std::to_string(rows) + "," + std::to_string(cols) + "]");
    }
    // Shape equal to the parameter's and its values present (get_header): the allocation is the
    // parameter's own size.
    RowMatrix<Scalar> v(rows, cols);
    for (Index i = 0; i < v.size(); ++i) {
      const double x = r.get<double>();
      // A value that is NaN, infinite or beyond Scalar's range is a flipped exponent bit (a v1
      // file has no checksum) or a diverged run: either way not weights to train on.
      if (!std::isfinite(x) || std::abs(x) > double(std::numeric_limits<Scalar>::max())) {
        std::ostringstream msg;
        msg << where << "corrupt value of " << name << " at [" << i / std::max<Index>(cols, 1) << ","
            << i % std::max<Index>(cols, 1) << "]: " << x << " (expected a finite value that fits "
            << (sizeof(Scalar) == 4 ? "float" : "double") << ")";
        throw std::runtime_error(msg.str());
      }
      v.data()[i] = Scalar(x);
    }
    values.push_back(std::move(v));
  }
  char end[8];
  r.bytes(end, 8);
  if (std::memcmp(end, kEnd, 8) != 0) throw std::runtime_error(where + "corrupt file (bad end marker)");
  if (!r.rest.empty()) throw std::runtime_error(where + "corrupt file (bytes after the end marker)");
  for (size_t i = 0; i < params.size(); ++i) params[i]->value = std::move(values[i]);
}

template void save_checkpoint<float>(const std::string&, const std::vector<Param<float>*>&, const std::string&);
template void save_checkpoint<double>(const std::string&, const std::vector<Param<double>*>&, const std::string&);
template void load_checkpoint<float>(const std::string&, const std::vector<Param<float>*>&, const std::string&);
template void load_checkpoint<double>(const std::string&, const std::vector<Param<double>*>&, const std::string&);
template void load_checkpoint_bytes<float>(std::string_view, const std::vector<Param<float>*>&, const std::string&,
                                           const std::string&);
template void load_checkpoint_bytes<double>(std::string_view, const std::vector<Param<double>*>&, const std::string&,
                                            const std::string&);

}  // namespace loglinear::train
