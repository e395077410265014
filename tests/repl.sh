#!/bin/sh
# The interactive prompt, driven as a person would: luaweave runs in a
# tmux pane (its own tmux server), keys go in with send-keys, the screen
# is read with capture-pane.  Every wait is for something to appear on
# the screen (30 s at most: a hang guard, never a timing assertion).
# Prints TAP.  LUAWEAVE_BUILD: the build dir; LUAWEAVE_V: the Lua version.
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
LW="$(cd "$B" 2>/dev/null && pwd)/luaweave"
SOCK=lwrepl$$
n=0 failed=0
PLAN=23
echo "1..$PLAN"
if ! command -v tmux >/dev/null 2>&1; then
  i=0
  while [ $i -lt $PLAN ]; do
    i=$((i + 1))
    echo "ok $i # SKIP no tmux (sh tests/deps.sh installs it)"
  done
  exit 0
fi
unset TMUX
tm() { tmux -L "$SOCK" -f /dev/null "$@"; }
D=$(mktemp -d "${TMPDIR:-/tmp}/lwrepl.XXXXXX") || exit 2
trap 'tm kill-server 2>/dev/null; rm -rf "$D"' EXIT

# start [args]: a new session "lw" running luaweave; the pane stays when
# luaweave ends, so that its exit status can be read
# (a new session each time: the old one stays until the end, so that the
# server never shuts down and restarts between them)
k=0
start() {
  k=$((k + 1))
  S=lw$k
  # the shell that runs luaweave writes its exit status to $D/$S.st
  # (tmux learns it only when it reaps the process, which it was seen
  # not to do under load: the pane dead, its process a zombie for good);
  # the shell catches SIGINT, so that a Ctrl-C is luaweave's alone, and
  # luaweave gets SIGINT's default action back as it execs
  tm new-session -d -s "$S" -x 160 -y 60 \
    "trap : INT; $LW $*; echo \$? >$D/$S.tmp; mv $D/$S.tmp $D/$S.st" \; \
    set-option -w remain-on-exit on
}
screen() { tm capture-pane -p -t "$S" -S -200; }
# wait_for ERE: 0 once the screen shows it
wait_for() {
  w=0
  while [ $w -lt 300 ]; do
    screen | grep -Eq -- "$1" && return 0
    sleep 0.1
    w=$((w + 1))
  done
  return 1
}
# wait_count ERE N: 0 once the screen shows N lines that match
wait_count() {
  w=0
  while [ $w -lt 300 ]; do
    [ "$(screen | grep -Ec -- "$1")" -ge "$2" ] && return 0
    sleep 0.1
    w=$((w + 1))
  done
  return 1
}
# wait_prompt: 0 once the last line on the screen is a bare prompt
wait_prompt() {
  w=0
  while [ $w -lt 300 ]; do
    screen | grep -v '^ *$' | tail -1 | grep -Eq '^>( |$)' && return 0
    sleep 0.1
    w=$((w + 1))
  done
  return 1
}
# wait_last ERE: 0 once the last line on the screen that is not blank
# matches
wait_last() {
  w=0
  while [ $w -lt 300 ]; do
    screen | grep -v '^ *$' | tail -1 | grep -Eq -- "$1" && return 0
    sleep 0.1
    w=$((w + 1))
  done
  return 1
}
# wait_dead: 0 once luaweave has ended; its exit status in $dead_status
# (128 + N when signal N killed it)
wait_dead() {
  w=0
  while [ $w -lt 300 ]; do
    if [ -f "$D/$S.st" ]; then
      dead_status=$(cat "$D/$S.st")
      return 0
    fi
    sleep 0.1
    w=$((w + 1))
  done
  return 1
}
# outputs WORD...: the screen's lines that are one of the words, in
# order, on one line; a prompt before one is dropped (without readline
# the terminal echoes typeahead when it comes, and the prompts of the
# lines that were typed ahead come out together, before their output)
outputs() {
  screen | sed 's/^\(>>* \)*//' | grep -Fx -e "$1" ${2:+-e "$2"} ${3:+-e "$3"} ${4:+-e "$4"} |
    tr '\n' ' '
}
keys() { tm send-keys -t "$S" "$@"; }
line() { tm send-keys -t "$S" -l "$1"; tm send-keys -t "$S" Enter; }
ok() {
  n=$((n + 1))
  if [ "$1" = 0 ]; then
    echo "ok $n - $2"
  else
    failed=$((failed + 1))
    echo "not ok $n - $2"
    screen | grep -v '^ *$' | tail -15 | sed 's/^/#   /'
    echo "#   exit status: $(cat "$D/$S.st" 2>/dev/null || echo none yet)"
  fi
}
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }

start
wait_for '^>( |$)'; ok $? "a terminal and no script: the banner and the prompt '> '"
line 'x = 1 +'
wait_for '^>>( |$)'; ok $? "an incomplete statement: the continuation prompt '>> '"
line '41'
line '=x'
wait_for '^42$'; ok $? "=expr prints its value"
line '"a" .. "b", 1 + 1'
case $V in
  5.1|5.2|jit) # their lua(1) prints values only after '='
    wait_for "^stdin:1: unexpected symbol near '\"a\"'$"
    ok $? "a plain expression is a statement, an error (as lua $V)" ;;
  *) wait_for '^ab[[:space:]]+2$'; ok $? "an expression prints its values" ;;
esac
line 'print("waited", task.wait(0.05) >= 0.05)'
wait_for '^waited[[:space:]]+true$'; ok $? "task.wait works at the prompt (the line is a task)"
line 't = task.delay(0.05, function() return "awaited" end)'
line 'print(task.await(t))'
wait_for '^true[[:space:]]+awaited$'; ok $? "task.await works at the prompt"
# nothing is typed after this line: only a loop running while the prompt
# waits for input prints the task's line
line 'task.spawn(function() task.wait(0.05) print("in the " .. "background") end)'
wait_for '(^|> )in the background$'; ok $? "a task spawned earlier runs while the prompt waits for input"
line 'do error("oops") end'
wait_for '^stdin:1: oops$'; ok $? "an error: its message (named stdin), and the prompt goes on"
line 'print("after" .. "wards")'
wait_for '^afterwards$'; ok $? "the next line runs after an error"
# a paste of several lines, one a statement over three, typed while a
# line runs (it waits until the paste is sent): every line runs, in order
F=$D/go$n
line "print('pa' .. 'sting') while not io.open('$F') do task.wait(0.01) end"
wait_for '^pasting$'
keys -l "$(printf 'print("o" .. "ne")\rfor i = 2, 3 do\rprint("n" .. i)\rend\rprint("la" .. "st")\r')"
: >"$F"
wait_for '(^|> )last$' &&
  [ "$(outputs one n2 n3 last)" = "one n2 n3 last " ]
ok $? "typeahead: lines pasted while a line runs all run, in order"
line 'print("wait" .. "ing") task.wait(100)'
wait_for '^waiting$'
keys C-c
wait_for 'interrupted!'; ok $? "Ctrl-C while a line waits in the loop: interrupted!"
line 'print("still" .. "here")'
wait_for '^stillhere$'; ok $? "the prompt goes on after Ctrl-C"
if [ "$V" = jit ]; then
  skip "Ctrl-C in a busy loop: LuaJIT runs no hook in compiled loops"
else
  line 'print("busy") while true do end'
  wait_for '^busy$'
  keys C-c
  wait_count 'interrupted!' 2
  ok $? "Ctrl-C in a busy loop: interrupted! where the code runs"
fi
# a plain coroutine the line resumed runs the loop (its hook is its own)
if [ "$V" = jit ]; then
  skip "Ctrl-C in a busy plain coroutine: LuaJIT runs no hook in compiled loops"
else
  line 'coroutine.wrap(function() print("co" .. "busy") while true do end end)()'
  wait_for '^cobusy$'
  keys C-c
  # (the terminal echoes the Ctrl-C as ^C before the message)
  wait_for '^(\^C)?stdin:1: interrupted!$' && wait_prompt &&
    screen | grep -EA1 '^(\^C)?stdin:1: interrupted!$' | grep -q '^stack traceback:$'
  ok $? "Ctrl-C in a busy plain coroutine: interrupted! and a traceback, the prompt goes on"
fi
# a task busy while the prompt waits for input: Ctrl-C interrupts it
# (its error is reported), and the prompt goes on
if [ "$V" = jit ]; then
  skip "Ctrl-C in a busy background task: LuaJIT runs no hook in compiled loops"
else
  line 'task.defer(function() print("bg" .. "busy") while true do end end)'
  wait_for '(^|> )bgbusy$'
  keys C-c
  wait_for '^[[:space:]]+stdin:1: in function <stdin:1>$' && line 'print("a" .. "live")' && wait_for '^alive$'
  ok $? "Ctrl-C while a background task busy-loops at the prompt: interrupted there, the prompt goes on"
fi
# a background task's error is reported as it fails, never held back
# until the next line: the prompt (and, with readline, what was typed)
# comes back under the report
start
wait_prompt
line 'task.spawn(function() error("bg" .. "-now") end)'
wait_for '^stdin:1: bg-now$' && wait_prompt
ok $? "a task failing as its line runs: reported at once, the prompt under it"
F=$D/late$n
line "task.spawn(function() while not io.open('$F') do task.wait(0.01) end error('bg' .. '-late') end)"
wait_prompt
keys -l 'print(4'
wait_last '^> print\(4$'
: >"$F"
if ldd "$LW" 2>/dev/null | grep -q libreadline; then TYPED='^> print\(4$'; else TYPED='^>$'; fi
wait_for '^stdin:1: bg-late$' && wait_last "$TYPED" &&
  screen | grep -v "^ *$" | grep -EB1 -- "$TYPED" | tail -2 | head -1 | grep -q 'in function <stdin:1>'
ok $? "a task failing while the prompt waits: reported at once, the prompt and what was typed shown again under it"
keys -l '2)'
keys Enter
wait_for '^42$'; ok $? "the line typed before the report runs whole"
# Ctrl-C at the prompt ends luaweave by SIGINT, as lua(1)
keys C-c
wait_dead && [ "$dead_status" = 130 ]; ok $? "Ctrl-C at the prompt, tasks done: luaweave ends by SIGINT (130)"

# Ctrl-D in a session of its own, once the prompt reads the terminal
# (typed between lines, the terminal's own line discipline would take it)
start
wait_prompt
keys C-d
wait_dead && [ "$dead_status" = 0 ]; ok $? "Ctrl-D at the prompt ends luaweave, status 0"

# at the end of the input the tasks started at the prompt run to their
# end, as after a script
# (the task ends only once the file F is there, made after the Ctrl-D)
F=$D/go$n
start
wait_prompt
line "task.spawn(function() while not io.open('$F') do task.wait(0.01) end print('after' .. ' the end') end)"
wait_prompt
keys C-d
: >"$F"
wait_dead && [ "$dead_status" = 0 ] && screen | grep -q '^after the end$'
ok $? "Ctrl-D: the tasks started at the prompt run to their end, then status 0"

# a paste at the prompt that ends with Ctrl-D: its lines run, then it ends
start
wait_prompt
keys -l "$(printf 'print("fi" .. "rst")\rprint("sec" .. "ond")\r\004')"
wait_dead && [ "$dead_status" = 0 ] &&
  [ "$(outputs first second)" = "first second " ]
ok $? "a paste that ends with Ctrl-D: every line runs, then status 0"

start -i -e "'print(\"from -e\")'"
wait_for '^from -e$' && wait_for '^>( |$)' && line 'task.exit(3)' && wait_dead && [ "$dead_status" = 3 ]
ok $? "-i after -e: the prompt; task.exit(3) there ends luaweave with status 3"

[ "$n" = "$PLAN" ] || echo "# ran $n of $PLAN"
[ "$failed" = 0 ]
