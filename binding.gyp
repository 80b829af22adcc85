{
  # The native half of the witnesses: raw and packet sockets, cBPF attach, batched receive.
  # Linux only (AF_PACKET, recvmmsg, setns). Build: npx node-gyp rebuild (npm install runs it).
  "targets": [
    {
      "target_name": "calico_nettest",
      "sources": [
        "native/addon.cc",
        "native/bpf.cc",
        "native/errors.cc",
        "native/filter.cc",
        "native/mtu.cc",
        "native/netlink.cc",
        "native/netns.cc",
        "native/open.cc",
        "native/privileges.cc",
        "native/socket.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-fvisibility=hidden", "-fstack-protector-strong", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=gnu++17", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-fno-exceptions"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
