// tern's TCP security addon: the socket options Node's `net` cannot set.
//   setMd5Key(fd, peer, key)       TCP_MD5SIG (RFC 2385) for one peer address; empty key = remove
//   setTtl(fd, ttl)                IP_TTL (+ IPV6_UNICAST_HOPS on IPv6 sockets)
//   setMinTtl(fd, minTtl)          IP_MINTTL (+ IPV6_MINHOPCOUNT on IPv6 sockets), GTSM (RFC 5082)
//   connect(peer, port, local, key, ttl, minTtl, cb) -> id
//                                  a socket with those options set BEFORE connect(2) (the SYN must
//                                  already be signed and carry TTL 255), connected without blocking:
//                                  the fd is watched with a uv_poll on Node's own loop, and cb(err, fd)
//                                  runs when the handshake ends. JS wraps the fd in a net.Socket.
//   cancelConnect(id)              stops a pending connect and closes its socket
//   setSaveSyn(fd, on)             TCP_SAVE_SYN on a listener: accepted sockets keep their SYN's headers
//   savedSynTtl(fd)                the TTL / hop limit the SYN of an accepted socket arrived with, -1 if
//                                  none was saved (TCP_SAVED_SYN; readable once)
//   inNetns(targetFd, homeFd, fn)  fn() with this thread in another network namespace (netns.cc)
//   netlinkRequest(message, cb)    one rtnetlink request on a libuv worker thread (netlink_request.cc)
// Kernel errors become JS errors carrying `option` (the socket option or call), `errno` and `code`.
#include <napi.h>
#include "netlink_request.h"
#include "netns.h"
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#ifndef IP_MINTTL
#define IP_MINTTL 21
#endif
#ifndef IPV6_MINHOPCOUNT
#define IPV6_MINHOPCOUNT 73
#endif

namespace {

constexpr size_t kMaxKeyLength = TCP_MD5SIG_MAXKEYLEN;  // 80

Napi::Error SysError(Napi::Env env, const std::string& option, int err) {
  Napi::Error e = Napi::Error::New(env, option + ": " + strerror(err));
  e.Set("option", Napi::String::New(env, option));
  e.Set("errno", Napi::Number::New(env, err));
  const char* name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name ? name : "UNKNOWN"));
  return e;
}

Napi::Value Throw(Napi::Error e) {
  Napi::Env env = e.Env();
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

struct Address {
  sockaddr_storage ss;
  socklen_t len;
  int family() const { return ss.ss_family; }
};

bool ParseAddress(const std::string& text, uint16_t port, Address* out) {
  memset(out, 0, sizeof *out);
  auto* s4 = reinterpret_cast<sockaddr_in*>(&out->ss);
  if (inet_pton(AF_INET, text.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    out->len = sizeof *s4;
    return true;
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&out->ss);
  if (inet_pton(AF_INET6, text.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    out->len = sizeof *s6;
    return true;
  }
  return false;
}

/** The address as a socket of `family` sees it: IPv4 peers of a dual-stack socket are v4-mapped. */
bool ToSocketFamily(int family, Address* a) {
  if (a->family() == family) return true;
  if (family != AF_INET6 || a->family() != AF_INET) return false;
  in_addr v4 = reinterpret_cast<sockaddr_in*>(&a->ss)->sin_addr;
  uint16_t port = reinterpret_cast<sockaddr_in*>(&a->ss)->sin_port;
  memset(&a->ss, 0, sizeof a->ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&a->ss);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = port;
  s6->sin6_addr.s6_addr[10] = 0xff;
  s6->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&s6->sin6_addr.s6_addr[12], &v4, 4);
  a->len = sizeof *s6;
  return true;
}

/** SO_DOMAIN of fd, or -errno. */
int SocketFamily(int fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return -errno;
  return domain;
}

// Each returns 0 or an errno and names the failing option in *option.
int DoSetMd5(int fd, int family, Address peer, const uint8_t* key, size_t keyLength, const char** option) {
  *option = "TCP_MD5SIG";
  if (!ToSocketFamily(family, &peer)) return EAFNOSUPPORT;
  tcp_md5sig sig;
  memset(&sig, 0, sizeof sig);
  memcpy(&sig.tcpm_addr, &peer.ss, peer.len);
  sig.tcpm_keylen = static_cast<uint16_t>(keyLength);
  if (keyLength) memcpy(sig.tcpm_key, key, keyLength);
  return setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof sig) == 0 ? 0 : errno;
}

int DoSetTtl(int fd, int family, int ttl, const char** option) {
  // IP_TTL also governs IPv4(-mapped) traffic on an IPv6 socket.
  *option = "IP_TTL";
  if (setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) != 0) return errno;
  if (family == AF_INET6) {
    *option = "IPV6_UNICAST_HOPS";
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) != 0) return errno;
  }
  return 0;
}

int DoSetMinTtl(int fd, int family, int minTtl, const char** option) {
  *option = "IP_MINTTL";
  if (setsockopt(fd, IPPROTO_IP, IP_MINTTL, &minTtl, sizeof minTtl) != 0) return errno;
  if (family == AF_INET6) {
    *option = "IPV6_MINHOPCOUNT";
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, &minTtl, sizeof minTtl) != 0) return errno;
  }
  return 0;
}

bool GetFd(const Napi::CallbackInfo& info, size_t i, int* fd) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v > 0x7fffffff || v != static_cast<int>(v)) return false;
  *fd = static_cast<int>(v);
  return true;
}

bool GetInt(const Napi::CallbackInfo& info, size_t i, int lo, int hi, int* out) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < lo || v > hi || v != static_cast<int>(v)) return false;
  *out = static_cast<int>(v);
  return true;
}

/** A key argument: undefined/null = none, else a Buffer of at most 80 bytes. */
bool GetKey(const Napi::CallbackInfo& info, size_t i, Napi::Buffer<uint8_t>* out, bool* present) {
  *present = false;
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return true;
  if (!info[i].IsBuffer()) return false;
  *out = info[i].As<Napi::Buffer<uint8_t>>();
  if (out->Length() > kMaxKeyLength) return false;
  *present = true;
  return true;
}

class TcpSecurity;

struct PendingConnect {
  uv_poll_t poll;
  int fd;
  int id;
  napi_env env;
  TcpSecurity* owner;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> context;
};

class TcpSecurity : public Napi::Addon<TcpSecurity> {
 public:
  TcpSecurity(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("setMd5Key", &TcpSecurity::SetMd5Key),
                             InstanceMethod("setTtl", &TcpSecurity::SetTtl),
                             InstanceMethod("setMinTtl", &TcpSecurity::SetMinTtl),
                             InstanceMethod("setNetlinkNoEnobufs", &TcpSecurity::SetNetlinkNoEnobufs),
                             InstanceMethod("connect", &TcpSecurity::Connect),
                             InstanceMethod("cancelConnect", &TcpSecurity::CancelConnect),
                             InstanceMethod("setSaveSyn", &TcpSecurity::SetSaveSyn),
                             InstanceMethod("savedSynTtl", &TcpSecurity::SavedSynTtl),
                             InstanceMethod("inNetns", &TcpSecurity::InNetns),
                             InstanceMethod("netlinkRequest", &TcpSecurity::NetlinkRequest),
                             InstanceValue("maxKeyLength", Napi::Number::New(env, kMaxKeyLength)),
                         });
  }

  ~TcpSecurity() {
    for (auto& [id, p] : pending_) Release(p, true);
    pending_.clear();
  }

 private:
  // setMd5Key(fd, peer, key?: Buffer)
  Napi::Value SetMd5Key(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!GetFd(info, 0, &fd)) return ThrowType(env, "fd must be a non-negative integer");
    if (info.Length() < 2 || !info[1].IsString()) return ThrowType(env, "peer must be an IP address string");
    Address peer;
    if (!ParseAddress(info[1].As<Napi::String>().Utf8Value(), 0, &peer))
      return ThrowType(env, "peer is not an IPv4 or IPv6 address");
    Napi::Buffer<uint8_t> key;
    bool hasKey;
    if (!GetKey(info, 2, &key, &hasKey)) return ThrowType(env, "key must be a Buffer of at most 80 bytes");
    int family = SocketFamily(fd);
    if (family < 0) return Throw(SysError(env, "SO_DOMAIN", -family));
    const char* option;
    int err = DoSetMd5(fd, family, peer, hasKey ? key.Data() : nullptr, hasKey ? key.Length() : 0, &option);
    if (err) return Throw(SysError(env, option, err));
    return env.Undefined();
  }

  Napi::Value SetTtl(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd, ttl;
    if (!GetFd(info, 0, &fd)) return ThrowType(env, "fd must be a non-negative integer");
    if (!GetInt(info, 1, 1, 255, &ttl)) return ThrowType(env, "ttl must be an integer 1..255");
    int family = SocketFamily(fd);
    if (family < 0) return Throw(SysError(env, "SO_DOMAIN", -family));
    const char* option;
    if (int err = DoSetTtl(fd, family, ttl, &option)) return Throw(SysError(env, option, err));
    return env.Undefined();
  }

  // Not TCP, but the same kind of missing socket option: with NETLINK_NO_ENOBUFS the kernel stops
  // reporting a subscribed netlink socket's overrun as a socket error (which netlink@0.3.0's poll
  // handler turns into an abort); it still counts the drops in /proc/net/netlink.
  Napi::Value SetNetlinkNoEnobufs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!GetFd(info, 0, &fd)) return ThrowType(env, "fd must be a non-negative integer");
    int on = 1;
    if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on) != 0)
      return Throw(SysError(env, "NETLINK_NO_ENOBUFS", errno));
    return env.Undefined();
  }

  Napi::Value SetMinTtl(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd, minTtl;
    if (!GetFd(info, 0, &fd)) return ThrowType(env, "fd must be a non-negative integer");
    if (!GetInt(info, 1, 0, 255, &minTtl)) return ThrowType(env, "minTtl must be an integer 0..255");
    int family = SocketFamily(fd);
    if (family < 0) return Throw(SysError(env, "SO_DOMAIN", -family));
    const char* option;
    if (int err = DoSetMinTtl(fd, family, minTtl, &option)) return Throw(SysError(env, option, err));
    return env.Undefined();
  }

  Napi::Value InNetns(const Napi::CallbackInfo& info) { return tern::InNetns(info); }
  Napi::Value NetlinkRequest(const Napi::CallbackInfo& info) { return tern::NetlinkRequest(info); }

  Napi::Value SetSaveSyn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!GetFd(info, 0, &fd)) return ThrowType(env, "fd must be a non-negative integer");
    if (info.Length() < 2 || !info[1].IsBoolean()) return ThrowType(env, "on must be a boolean");
    int on = info[1].As<Napi::Boolean>().Value() ? 1 : 0;
    if (setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &on, sizeof on) != 0)
      return Throw(SysError(env, "TCP_SAVE_SYN", errno));
    return env.Undefined();
  }

  Napi::Value SavedSynTtl(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!GetFd(info, 0, &fd)) return ThrowType(env, "fd must be a non-negative integer");
    uint8_t headers[512];
    socklen_t len = sizeof headers;
    if (getsockopt(fd, IPPROTO_TCP, TCP_SAVED_SYN, headers, &len) != 0) {
      if (errno == ENOENT) return Napi::Number::New(env, -1);
      return Throw(SysError(env, "TCP_SAVED_SYN", errno));
    }
    // The network header comes first: IPv4 TTL at byte 8, IPv6 hop limit at byte 7.
    if (len >= 20 && headers[0] >> 4 == 4) return Napi::Number::New(env, headers[8]);
    if (len >= 40 && headers[0] >> 4 == 6) return Napi::Number::New(env, headers[7]);
    return Napi::Number::New(env, -1);
  }

  // connect(peer, port, localAddress?: string, key?: Buffer, ttl: 0 | 1..255, minTtl: 0..255, cb) -> id
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 7) return ThrowType(env, "connect takes 7 arguments");
    if (!info[0].IsString()) return ThrowType(env, "peer must be an IP address string");
    int port, ttl, minTtl;
    if (!GetInt(info, 1, 1, 65535, &port)) return ThrowType(env, "port must be an integer 1..65535");
    Address peer;
    if (!ParseAddress(info[0].As<Napi::String>().Utf8Value(), static_cast<uint16_t>(port), &peer))
      return ThrowType(env, "peer is not an IPv4 or IPv6 address");
    Address local;
    bool hasLocal = !info[2].IsUndefined() && !info[2].IsNull();
    if (hasLocal) {
      if (!info[2].IsString() || !ParseAddress(info[2].As<Napi::String>().Utf8Value(), 0, &local))
        return ThrowType(env, "localAddress is not an IPv4 or IPv6 address");
      if (local.family() != peer.family())
        return ThrowType(env, "localAddress and peer are of different address families");
    }
    Napi::Buffer<uint8_t> key;
    bool hasKey;
    if (!GetKey(info, 3, &key, &hasKey)) return ThrowType(env, "key must be a Buffer of at most 80 bytes");
    if (!GetInt(info, 4, 0, 255, &ttl)) return ThrowType(env, "ttl must be an integer 0..255 (0 = default)");
    if (!GetInt(info, 5, 0, 255, &minTtl)) return ThrowType(env, "minTtl must be an integer 0..255");
    if (!info[6].IsFunction()) return ThrowType(env, "callback must be a function");

    int fd = socket(peer.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Throw(SysError(env, "socket", errno));
    const char* option = "";
    int err = 0;
    if (hasKey) err = DoSetMd5(fd, peer.family(), peer, key.Data(), key.Length(), &option);
    if (!err && ttl) err = DoSetTtl(fd, peer.family(), ttl, &option);
    if (!err && minTtl) err = DoSetMinTtl(fd, peer.family(), minTtl, &option);
    if (!err && hasLocal && bind(fd, reinterpret_cast<sockaddr*>(&local.ss), local.len) != 0) {
      option = "bind";
      err = errno;
    }
    if (!err && ::connect(fd, reinterpret_cast<sockaddr*>(&peer.ss), peer.len) != 0 && errno != EINPROGRESS) {
      option = "connect";
      err = errno;
    }
    if (err) {
      close(fd);
      return Throw(SysError(env, option, err));
    }

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
      close(fd);
      return Throw(Napi::Error::New(env, "no libuv event loop"));
    }
    auto* p = new PendingConnect();
    p->fd = fd;
    p->id = nextId_++;
    p->env = env;
    p->callback = Napi::Persistent(info[6].As<Napi::Function>());
    p->context = std::make_unique<Napi::AsyncContext>(env, "TernTcpSecureConnect");
    p->owner = this;
    p->poll.data = p;
    int rc = uv_poll_init(loop, &p->poll, fd);
    if (rc == 0) rc = uv_poll_start(&p->poll, UV_WRITABLE, &TcpSecurity::OnWritable);
    if (rc != 0) {
      close(fd);
      delete p;
      return Throw(Napi::Error::New(env, std::string("uv_poll: ") + uv_strerror(rc)));
    }
    pending_[p->id] = p;
    return Napi::Number::New(env, p->id);
  }

  Napi::Value CancelConnect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int id;
    if (!GetInt(info, 0, 0, 0x7fffffff, &id)) return ThrowType(env, "id must be an integer");
    auto it = pending_.find(id);
    if (it == pending_.end()) return Napi::Boolean::New(env, false);
    PendingConnect* p = it->second;
    pending_.erase(it);
    Release(p, true);
    return Napi::Boolean::New(env, true);
  }

  /** Stops watching; closes the socket too unless it is handed to JS. The struct dies with the handle. */
  static void Release(PendingConnect* p, bool closeFd) {
    uv_poll_stop(&p->poll);
    if (closeFd) close(p->fd);
    p->callback.Reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&p->poll),
             [](uv_handle_t* h) { delete static_cast<PendingConnect*>(h->data); });
  }

  static void OnWritable(uv_poll_t* handle, int status, int /*events*/) {
    auto* p = static_cast<PendingConnect*>(handle->data);
    p->owner->pending_.erase(p->id);
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (!err && status < 0) err = -status;
    Napi::Env env(p->env);
    Napi::HandleScope scope(env);
    Napi::FunctionReference callback = std::move(p->callback);
    std::unique_ptr<Napi::AsyncContext> context = std::move(p->context);
    int fd = p->fd;
    Release(p, err != 0);
    if (err) {
      callback.MakeCallback(env.Global(), {SysError(env, "connect", err).Value()}, *context);
    } else {
      callback.MakeCallback(env.Global(), {env.Null(), Napi::Number::New(env, fd)}, *context);
    }
  }

  std::map<int, PendingConnect*> pending_;
  int nextId_ = 1;
};

}  // namespace

NODE_API_ADDON(TcpSecurity)
