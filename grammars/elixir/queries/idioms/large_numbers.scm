; Number literals with five or more digits, or with underscores (Python checks base and placement).
((integer) @finding
  (#match? @finding "([0-9]_?){5}|_"))
((float) @finding
  (#match? @finding "^([0-9]_?){5}|^[0-9]+_"))
