#!/bin/bash
# Range requests on /resolve (RFC 9110): 206 with Content-Range for first,
# middle, open-ended, suffix and overlong ranges, 416 past the end; on an
# LFS file (blob store) and on a regular file (git blob). Every body is
# compared with the same bytes cut from the source.
. "$(dirname "$0")/lib.sh"

setup_model_repo
start_server

# range FILE SPEC FIRST LAST: request bytes=SPEC of FILE and expect a 206
# carrying bytes FIRST..LAST (inclusive) of the source.
range() {
	local f=$1 spec=$2 first=$3 last=$4 size
	size=$(size_of "$MODEL/$f")
	fetch rg -H "Range: bytes=$spec" "$base/$REPO/resolve/main/$f" || return 1
	expect_status rg 206 || return 1
	expect_hdr rg Content-Range "bytes $first-$last/$size" || return 1
	expect_hdr rg Content-Length $((last - first + 1)) || return 1
	tail -c +$((first + 1)) "$MODEL/$f" | head -c $((last - first + 1)) >"$tmp/want" &&
	cmp "$(body rg)" "$tmp/want"
}

for f in model.safetensors tokenizer.json; do
	s=$(size_of "$MODEL/$f")
	expect_success "$f: bytes=0-0 (the probe JS clients send)" "range $f 0-0 0 0"
	expect_success "$f: bytes=0-99" "range $f 0-99 0 99"
	expect_success "$f: bytes=5- (open-ended)" "range $f 5- 5 $((s - 1))"
	expect_success "$f: bytes=-10 (suffix)" "range $f -10 $((s - 10)) $((s - 1))"
	expect_success "$f: a middle range" "range $f 40000-70000 40000 70000"
	expect_success "$f: an end past EOF is clipped" "range $f $((s - 5))-$((s + 1000)) $((s - 5)) $((s - 1))"
	expect_success "$f: the last byte" "range $f $((s - 1))-$((s - 1)) $((s - 1)) $((s - 1))"
	expect_success "$f: a suffix longer than the file is the whole file" "range $f -$((s + 50)) 0 $((s - 1))"
	expect_success "$f: a start at EOF gets 416 with bytes */SIZE" "
		fetch rg -H 'Range: bytes=$s-' \"\$base/\$REPO/resolve/main/$f\" &&
		expect_status rg 416 && expect_hdr rg Content-Range 'bytes */$s'
	"
	expect_success "$f: a start far past EOF gets 416" "
		fetch rg -H 'Range: bytes=$((s + 100000))-$((s + 200000))' \"\$base/\$REPO/resolve/main/$f\" &&
		expect_status rg 416 && expect_hdr rg Content-Range 'bytes */$s'
	"
done

expect_success 'safetensors header read: bytes=0-100000 then the header' '
	range model.safetensors 0-100000 0 100000 &&
	n=$("$PYTHON" -c "import struct,sys; print(struct.unpack(\"<Q\", open(sys.argv[1],\"rb\").read(8))[0])" "$(body rg)") &&
	range model.safetensors 8-$((n + 7)) 8 $((n + 7))
'
expect_success 'ranges across MiB boundaries of the LFS file' '
	range model.safetensors 1048575-3145728 1048575 3145728 &&
	range model.safetensors 12000000-12582911 12000000 12582911
'
expect_success 'ranges on a dev-only revision and on a tag' '
	fetch rg -H "Range: bytes=2-9" "$base/$REPO/resolve/dev/config.json" &&
	expect_status rg 206 && tail -c +3 "$DEV/config.json" | head -c 8 >want &&
	cmp "$(body rg)" want &&
	fetch rg2 -H "Range: bytes=2-9" "$base/$REPO/resolve/v1.0/config.json" &&
	expect_status rg2 206 && tail -c +3 "$MODEL/config.json" | head -c 8 >want2 &&
	cmp "$(body rg2)" want2
'
expect_success 'a HEAD with a Range still reports the full size in X-Linked-Size' '
	fetch_head hr -H "Range: bytes=0-0" "$base/$REPO/resolve/main/model.safetensors" &&
	expect_hdr hr X-Linked-Size "$(size_of "$MODEL/model.safetensors")"
'
expect_success 'curl resumes a partial download (Range: bytes=N-)' '
	head -c 5000000 "$MODEL/model.safetensors" >partial &&
	hcurl -C - -o partial "$base/$REPO/resolve/main/model.safetensors" &&
	cmp partial "$MODEL/model.safetensors"
'
done_testing
