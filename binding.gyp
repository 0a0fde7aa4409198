{
  "targets": [
    {
      "target_name": "tapmesh_native",
      "sources": ["native/tapmesh.cc", "native/tap.cc", "native/udp.cc", "native/poll.cc", "native/netns.cc", "native/aead.cc", "native/checksum.cc", "native/copy.cc", "native/relay.cc", "native/relay-api.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [
        ["node_shared_openssl=='true'", {
          "libraries": ["-lcrypto"]
        }]
      ]
    }
  ]
}
