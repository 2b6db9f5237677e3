; length(x) compared with 0, either side or piped (the integer's value is checked in Python).
(binary_operator
  left: (call target: (identifier) @name)
  operator: ["==" "===" "!=" "!==" ">"]
  right: (integer)
  (#eq? @name "length")) @finding

(binary_operator
  left: (integer)
  operator: ["==" "===" "!=" "!==" "<"]
  right: (call target: (identifier) @name)
  (#eq? @name "length")) @finding

; x |> ... |> length() == 0
(binary_operator
  left: (binary_operator operator: "|>" right: (call target: (identifier) @name))
  operator: ["==" "===" "!=" "!==" ">"]
  right: (integer)
  (#eq? @name "length")) @finding
