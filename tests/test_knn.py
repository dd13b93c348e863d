"""k-nearest neighbours against sklearn's KNeighborsClassifier and a brute-force loop."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.neighbors import KNeighborsClassifier

from coursekit.knn import KNearestNeighbor


def _brute_force(X_train, y_train, X_test, k):
    """Loops over every pair; ties: stable order of neighbours, smaller label on equal votes."""
    out = []
    for x in X_test:
        d = [float(np.sum((x - t) ** 2)) for t in X_train]
        order = sorted(range(len(d)), key=lambda i: (d[i], i))[:k]
        votes = {}
        for i in order:
            votes[y_train[i]] = votes.get(y_train[i], 0) + 1
        best = max(votes.values())
        out.append(min(label for label, v in votes.items() if v == best))
    return np.array(out)


@given(st.integers(1, 7), st.integers(0, 2**31))
def test_knn_matches_sklearn_and_brute_force(k, seed):
    rng = np.random.default_rng(seed)
    # Continuous features: distance ties have probability zero, so every
    # implementation sees the same neighbours and only vote ties remain.
    X_train = rng.normal(size=(30, 4))
    y_train = rng.integers(0, 4, size=30)
    X_test = rng.normal(size=(15, 4))
    ours = KNearestNeighbor(k).fit(X_train, y_train).predict(X_test)
    sk = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(X_train, y_train).predict(X_test)
    np.testing.assert_array_equal(ours, _brute_force(X_train, y_train, X_test, k))
    # sklearn also breaks vote ties towards the smaller label (the first class in classes_).
    np.testing.assert_array_equal(ours, sk)


def test_one_nn_labels_the_training_set_perfectly():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = rng.integers(0, 5, size=50)
    assert (KNearestNeighbor(1).fit(X, y).predict(X) == y).all()


def test_vote_tie_goes_to_smaller_label():
    X = np.array([[0.0], [1.0], [10.0]])
    y = np.array([7, 2, 5])
    # k = 2 at 0.4: neighbours labelled 7 and 2, one vote each -> 2
    assert KNearestNeighbor(2).fit(X, y).predict(np.array([[0.4]])).tolist() == [2]


def test_distance_tie_goes_to_first_stored_example():
    X = np.array([[-1.0], [1.0]])
    assert KNearestNeighbor(1).fit(X, np.array([4, 3])).predict(np.array([[0.0]])).tolist() == [4]


def test_images_are_flattened():
    rng = np.random.default_rng(0)
    X = rng.random((10, 1, 4, 4))
    y = np.arange(10)
    knn = KNearestNeighbor(1).fit(X, y)
    assert knn.X_train.shape == (10, 16)
    assert (knn.predict(X) == y).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive integer"):
        KNearestNeighbor(0)
    with pytest.raises(ValueError, match="larger than the training set"):
        KNearestNeighbor(5).fit(np.zeros((3, 2)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="call fit"):
        KNearestNeighbor(1).predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="integer labels"):
        KNearestNeighbor(1).fit(np.zeros((3, 2)), np.zeros(3))
