//! libstdc++'s `std::sort` (introsort) and `std::partial_sort` (heap select + sort heap), ported step for step so
//! the candidate order — and hence the drawn token — matches the reference even on exactly tied logits.
//! Split out of `sample/mod.rs`; upstream: libstdc++ `bits/stl_algo.h`, `bits/stl_heap.h` (GCC 12).

// ---------------------------------------------------------------------------------------------------------
// libstdc++ std::sort / std::partial_sort, step for step (GCC bits/stl_algo.h, bits/stl_heap.h)
// ---------------------------------------------------------------------------------------------------------

const S_THRESHOLD: usize = 16;

fn adjust_heap<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], mut hole: usize, len: usize, value: T, comp: &F) {
    let top = hole;
    let mut second = hole;
    while len >= 1 && second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if comp(&v[second], &v[second - 1]) {
            second -= 1;
        }
        v[hole] = v[second];
        hole = second;
    }
    if len & 1 == 0 && len >= 2 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        v[hole] = v[second - 1];
        hole = second - 1;
    }
    // __push_heap
    while hole > top {
        let parent = (hole - 1) / 2;
        if !comp(&v[parent], &value) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = value;
}

fn make_heap<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], comp: &F) {
    let len = v.len();
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = v[parent];
        adjust_heap(v, parent, len, value, comp);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// `__pop_heap(first, first+len, result)`.
fn pop_heap_to<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], len: usize, result: usize, comp: &F) {
    let value = v[result];
    v[result] = v[0];
    adjust_heap(&mut v[..len], 0, len, value, comp);
}

/// `std::partial_sort(v, v + middle, v + len, comp)`.
pub(super) fn std_partial_sort<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], middle: usize, comp: &F) {
    if middle == 0 {
        return;
    }
    // __heap_select
    make_heap(&mut v[..middle], comp);
    for i in middle..v.len() {
        if comp(&v[i], &v[0]) {
            pop_heap_to(v, middle, i, comp);
        }
    }
    // __sort_heap
    let mut last = middle;
    while last > 1 {
        last -= 1;
        pop_heap_to(v, last, last, comp);
    }
}

fn move_median_to_first<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], r: usize, a: usize, b: usize, c: usize, comp: &F) {
    let m = if comp(&v[a], &v[b]) {
        if comp(&v[b], &v[c]) {
            b
        } else if comp(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if comp(&v[a], &v[c]) {
        a
    } else if comp(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(r, m);
}

fn unguarded_partition<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], mut first: usize, mut last: usize, pivot: usize, comp: &F) -> usize {
    loop {
        while comp(&v[first], &v[pivot]) {
            first += 1;
        }
        last -= 1;
        while comp(&v[pivot], &v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

fn introsort_loop<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], first: usize, mut last: usize, mut depth: u32, comp: &F) {
    while last - first > S_THRESHOLD {
        if depth == 0 {
            let n = last - first;
            std_partial_sort(&mut v[first..last], n, comp);
            return;
        }
        depth -= 1;
        let mid = first + (last - first) / 2;
        move_median_to_first(v, first, first + 1, mid, last - 1, comp);
        let cut = unguarded_partition(v, first + 1, last, first, comp);
        introsort_loop(v, cut, last, depth, comp);
        last = cut;
    }
}

fn unguarded_linear_insert<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], mut last: usize, comp: &F) {
    let val = v[last];
    let mut next = last - 1;
    while comp(&val, &v[next]) {
        v[last] = v[next];
        last = next;
        next -= 1;
    }
    v[last] = val;
}

fn insertion_sort<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], comp: &F) {
    if v.is_empty() {
        return;
    }
    for i in 1..v.len() {
        if comp(&v[i], &v[0]) {
            let val = v[i];
            v.copy_within(0..i, 1);
            v[0] = val;
        } else {
            unguarded_linear_insert(v, i, comp);
        }
    }
}

/// `std::sort(v.begin(), v.end(), comp)`.
pub(super) fn std_sort<T: Copy, F: Fn(&T, &T) -> bool>(v: &mut [T], comp: &F) {
    let n = v.len();
    if n == 0 {
        return;
    }
    let lg = usize::BITS - 1 - n.leading_zeros();
    introsort_loop(v, 0, n, lg * 2, comp);
    if n > S_THRESHOLD {
        insertion_sort(&mut v[..S_THRESHOLD], comp);
        for i in S_THRESHOLD..n {
            unguarded_linear_insert(v, i, comp);
        }
    } else {
        insertion_sort(v, comp);
    }
}
