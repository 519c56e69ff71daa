{
  "targets": [
    {
      "target_name": "smd_native",
      "sources": ["native/addon.c", "native/dirstat.c", "native/dbparse.c", "native/syncfs.c", "native/rename.c"],
      "cflags": ["-O2", "-ffp-contract=off"],
      "conditions": [["OS=='win'", {"type": "none"}]]
    }
  ]
}
