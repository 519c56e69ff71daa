{
  "targets": [
    {
      "target_name": "dirstat",
      "sources": ["native/dirstat.c"],
      "cflags": ["-O2", "-ffp-contract=off"],
      "conditions": [["OS=='win'", {"type": "none"}]]
    }
  ]
}
