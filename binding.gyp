{
  "targets": [
    {
      "target_name": "tsmq_native",
      "sources": ["native/crc32.c"],
      "cflags": ["-O3", "-Wall", "-Wextra"],
      "cflags!": ["-O2"],
      "xcode_settings": { "GCC_OPTIMIZATION_LEVEL": "3" },
      "msvs_settings": { "VCCLCompilerTool": { "Optimization": 2 } }
    }
  ]
}
