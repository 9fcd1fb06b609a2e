#!/bin/bash
# Hostile URLs and headers on the download and API routes: path traversal
# in every spelling, NUL bytes, backslashes, invalid repo ids and absurd
# ranges get a 4xx (or, for ranges, a full 200), never a byte from outside
# the data folder and never a crash. The server still answers afterwards.
. "$(dirname "$0")/lib.sh"

setup_model_repo
start_server
passwd_line=$(head -n 1 /etc/passwd)
# A secret file next to the data folder that must never be served.
echo "haven-secret-$$" >"$tmp/secret.txt"

# hostile NAME PATH: GET PATH exactly as written (no normalisation by curl):
# a 4xx status and no bytes of /etc/passwd or the secret.
hostile() {
	fetch "$1" --path-as-is "$base$2" || return 1
	is_4xx "$1" || return 1
	if grep -aq -e "$passwd_line" -e "haven-secret-$$" "$(body "$1")"; then
		echo "leaked a file from outside the data folder for $2"
		return 1
	fi
}

R=/$REPO/resolve/main
expect_success 'traversal: ../../../etc/passwd' 'hostile t1 "$R/../../../../../../etc/passwd"'
expect_success 'traversal: ../ reaching the secret' 'hostile t2 "$R/../../../../secret.txt"'
expect_success 'traversal: %2e%2e/' 'hostile t3 "$R/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"'
expect_success 'traversal: ..%2f' 'hostile t4 "$R/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd"'
expect_success 'traversal: %2E%2E%2F' 'hostile t5 "$R/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"'
expect_success 'traversal: double-encoded %252e%252e' 'hostile t6 "$R/%252e%252e/%252e%252e/etc/passwd"'
expect_success 'traversal: in the revision' 'hostile t7 "/$REPO/resolve/..%2F..%2F..%2F..%2Fetc/passwd"'
expect_success 'traversal: in the repo id' 'hostile t8 "/..%2F..%2F..%2F..%2Fetc/passwd/resolve/main/x"'
expect_success 'traversal: from the root' 'hostile t9 "/../../../../../../etc/passwd"'
expect_success 'traversal: an absolute path after the revision' 'hostile t10 "$R//etc/passwd"'
expect_success 'traversal: backslashes' 'hostile t11 "$R/..\\..\\..\\..\\..\\etc\\passwd"'
expect_success 'traversal: encoded backslashes' 'hostile t12 "$R/..%5c..%5c..%5c..%5cetc%5cpasswd"'
expect_success 'traversal: into the data folder (git, blobs, meta)' '
	hostile t13 "$R/../../../git" && hostile t14 "$R/%2e%2e/%2e%2e/%2e%2e/blobs" &&
	hostile t15 "$R/..%2F..%2F..%2Fmeta%2Fdata.mdb"
'
expect_success 'traversal: in /raw/ and the tree API' '
	hostile t16 "/$REPO/raw/main/../../../../../etc/passwd" &&
	hostile t17 "/api/models/$REPO/tree/main/..%2F..%2F..%2F..%2Fetc" &&
	hostile t18 "/api/models/$REPO/tree/main/../../../../../etc"
'
expect_success 'traversal: a dot segment inside the repo tree' '
	hostile t19 "$R/sub/../config.json" || {
		# Normalising it inside the repo is acceptable too.
		expect_status t19 200 && cmp "$(body t19)" "$MODEL/config.json"
	}
'
expect_success 'a NUL byte (%00) in the path' 'hostile n1 "$R/config.json%00.txt"'
expect_success 'a NUL byte in the revision' 'hostile n2 "/$REPO/resolve/main%00/config.json"'
expect_success 'a NUL byte in the repo id' 'hostile n3 "/haven-test%00/Tiny-Model/resolve/main/config.json"'
expect_success 'invalid UTF-8 (%ff%fe) in the path' 'hostile u1 "$R/%ff%fe.json"'
expect_success 'a bad percent escape (%zz, trailing %)' '
	hostile b1 "$R/conf%zzig.json" && hostile b2 "$R/config.json%"
'
expect_success 'a raw NUL byte in the request line gets 400 (or a closed connection)' '
	raw_http "GET $R/config.json\x00.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" >raw1 &&
	case $(raw_status raw1) in 400|"") ;; *) head -c 300 raw1; false;; esac &&
	! grep -aq "$passwd_line" raw1
'
expect_success 'raw backslashes in the request line' '
	raw_http "GET $R/..\\\\..\\\\..\\\\..\\\\etc\\\\passwd HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" >raw2 &&
	case $(raw_status raw2) in 4??|"") ;; *) head -c 300 raw2; false;; esac &&
	! grep -aq "$passwd_line" raw2
'
expect_success 'an absolute-form request target to another host' '
	raw_http "GET http://127.0.0.1:$port/../../etc/passwd HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" >raw3 &&
	! grep -aq "$passwd_line" raw3
'

long=$(head -c 200 /dev/zero | tr "\0" a)
for id in "a--b/model" "ns/a--b" "-x/model" "ns/-x" "ns/x-" "ns/.x" "ns/x." "ns/a..b" \
	"ns/$long" "$long/model" "ns/x.git" "ns/a%20b" "ns/a%2Fb"; do
	expect_success "invalid repo id '$id' gets a 4xx on the API and resolve" "
		hostile i1 '/api/models/$id' && hostile i2 '/$id/resolve/main/config.json' &&
		hostile i3 '/api/models/$id/tree/main'
	"
done

# absurd RANGE-HEADER: a 416 with bytes */SIZE or the full file with 200.
st_size=$(size_of "$MODEL/model.safetensors")
absurd() {
	fetch ab -H "Range: $1" "$base/$REPO/resolve/main/model.safetensors" || return 1
	case $(status ab) in
	200) cmp "$(body ab)" "$MODEL/model.safetensors" ;;
	416) expect_hdr ab Content-Range "bytes */$st_size" ;;
	*)
		echo "Range: $1 got $(status ab)"
		show ab
		return 1
		;;
	esac
}
expect_success 'absurd range: bytes=999999999999999999999-' 'absurd "bytes=999999999999999999999-"'
expect_success 'absurd range: bytes=0-999999999999999999999 (overflowing end)' '
	fetch ab -H "Range: bytes=0-999999999999999999999" "$base/$REPO/resolve/main/model.safetensors" &&
	case $(status ab) in
	200) cmp "$(body ab)" "$MODEL/model.safetensors" ;;
	206) cmp "$(body ab)" "$MODEL/model.safetensors" && expect_hdr ab Content-Range "bytes 0-$((st_size - 1))/$st_size" ;;
	416) true ;;
	*) show ab; false ;;
	esac
'
expect_success 'absurd range: bytes=-999999999999999999999' 'absurd "bytes=-999999999999999999999" || { expect_status ab 206 && cmp "$(body ab)" "$MODEL/model.safetensors"; }'
expect_success 'absurd range: bytes=5-2 (end before start)' 'absurd "bytes=5-2"'
expect_success 'absurd range: bytes=-0' 'absurd "bytes=-0"'
expect_success 'absurd range: bytes=abc' 'absurd "bytes=abc"'
expect_success 'absurd range: bytes=--5' 'absurd "bytes=--5"'
expect_success 'absurd range: bytes=1-2-3' 'absurd "bytes=1-2-3"'
expect_success 'absurd range: items=0-5 (unknown unit)' 'absurd "items=0-5"'
expect_success 'absurd range: an empty value' 'absurd "bytes="'
expect_success 'multiple ranges: 200, 206 or 416, never a crash' '
	fetch mr -H "Range: bytes=0-1,5-6" "$base/$REPO/resolve/main/model.safetensors" &&
	case $(status mr) in 200|206|416) ;; *) show mr; false;; esac
'
expect_success 'a huge Range header value' '
	spec=$(for i in $(seq 1 2000); do printf "%d-%d," $i $i; done) &&
	fetch hr -H "Range: bytes=${spec}0-0" "$base/$REPO/resolve/main/model.safetensors" &&
	case $(status hr) in 200|206|416|431|400) ;; *) show hr; false;; esac
'
expect_success 'the server still serves the file afterwards' '
	fetch ok "$base/$REPO/resolve/main/model.safetensors" &&
	expect_status ok 200 && cmp "$(body ok)" "$MODEL/model.safetensors"
'
done_testing
